// Command httpserver is a net/http service guarded by townhall's Require
// middleware.
//
//	go run ./examples/httpserver            # listens on 127.0.0.1:8080
//	curl -H 'X-User: olga' localhost:8080/m/riverton/occurrences
//	curl localhost:8080/metrics               # Prometheus metrics
//
// The X-User header stands in for the host's own authentication: whatever
// signs users in puts the subject in the request context with
// access.WithSubject, and Require does the rest.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	dir, err := os.MkdirTemp("", "townhall-httpserver-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	obs, err := newObservability(os.Stderr)
	if err != nil {
		log.Fatal(err)
	}
	defer obs.Close()
	p, err := setup(context.Background(), filepath.Join(dir, "townhall.db"), obs.options()...)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	obs.logger.Info("listening", slog.String("addr", *addr), slog.String("metrics", "/metrics"))
	log.Fatal(http.ListenAndServe(*addr, obs.serve(newServer(p))))
}

// setup opens a platform with one municipality and a few staff.
func setup(ctx context.Context, path string, opts ...townhall.Option) (*townhall.Platform, error) {
	db, err := townhall.OpenSQLite(path)
	if err != nil {
		return nil, err
	}
	p, err := townhall.Open(ctx, db, opts...)
	if err != nil {
		return nil, err
	}
	sys := access.System()
	steps := []func() error{
		func() error {
			_, err := p.Locations.Create(ctx, location.Location{ID: "riverton", Level: "municipality"})
			return err
		},
		func() error {
			_, err := p.Locations.Create(ctx, location.Location{ID: "hillside", Level: "municipality"})
			return err
		},
	}
	for user, role := range map[string]string{"olga": access.RoleOperator, "vera": access.RoleViewer, "alice": access.RoleAdmin} {
		steps = append(steps, func() error {
			if _, err := p.Users.Create(ctx, users.NewUser{ID: user, Username: user}); err != nil {
				return err
			}
			if _, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: user, LocationID: "riverton", Role: role}); err != nil {
				return err
			}
			return p.Admin.Approve(ctx, sys, user, "riverton")
		})
	}
	for _, step := range steps {
		if err := step(); err != nil {
			p.Close()
			return nil, err
		}
	}
	return p, nil
}

// newServer routes the service's endpoints through Require.
func newServer(p *townhall.Platform) http.Handler {
	c := p.Checker
	inMunicipality := access.WithMunicipalityPathValue("municipality")
	mux := http.NewServeMux()
	mux.Handle("GET /m/{municipality}/occurrences",
		c.Require("occurrences", "view", inMunicipality)(http.HandlerFunc(listOccurrences)))
	mux.Handle("POST /m/{municipality}/occurrences/{id}/close",
		c.Require("occurrences", "close", inMunicipality)(http.HandlerFunc(closeOccurrence)))
	mux.Handle("DELETE /m/{municipality}/equipment/{id}",
		c.Require("equipment", "delete", inMunicipality, access.WithNotFoundOnDeny())(http.HandlerFunc(deleteEquipment)))
	// Without a municipality, Require is the module gate (menus, routes).
	mux.Handle("GET /menu/equipment", c.Require("equipment", "view")(http.HandlerFunc(menu)))
	return authenticate(mux)
}

// authenticate is the host's sign-in, reduced to a header for the example.
func authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get("X-User"); id != "" {
			r = r.WithContext(access.WithSubject(r.Context(), access.Subject{UserID: id}))
		}
		next.ServeHTTP(w, r)
	})
}

func listOccurrences(w http.ResponseWriter, r *http.Request) {
	d, _ := access.DecisionFrom(r.Context())
	fmt.Fprintf(w, "occurrences of %s (allowed: %s)\n", r.PathValue("municipality"), d.Reason)
}

func closeOccurrence(w http.ResponseWriter, r *http.Request) {
	d, _ := access.DecisionFrom(r.Context())
	fmt.Fprintf(w, "closed %s as %s@%s\n", r.PathValue("id"), d.Role, d.Domain)
}

func deleteEquipment(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusNoContent)
}

func menu(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "equipment menu")
}
