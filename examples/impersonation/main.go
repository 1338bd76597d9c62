// Command impersonation shows a super admin acting as another user to see
// what that user sees, with "all restrictions of the selected user
// applied": the support desk reproduces an operator's problem through an
// impersonation token, over HTTP, and the audit log keeps both names on
// everything done meanwhile.
//
//	go run ./examples/impersonation
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

func main() {
	dir, err := os.MkdirTemp("", "townhall-impersonation-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(context.Background(), filepath.Join(dir, "townhall.db"), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, path string, out io.Writer) error {
	p, err := setup(ctx, path)
	if err != nil {
		return err
	}
	defer p.Close()
	srv := httptest.NewServer(newServer(p))
	defer srv.Close()
	ada := access.Subject{UserID: "ada"}

	// Only an active super admin impersonates, never another super admin
	// or a technical user, and always with a reason.
	fmt.Fprintln(out, "== refusals")
	for _, try := range []struct {
		actor          access.Subject
		target, reason string
	}{
		{access.Subject{UserID: "alice"}, "olga", "ticket 4711"}, // alice is an admin, not a super admin
		{ada, "bob", "ticket 4711"},                              // bob is a super admin too
		{ada, "importer", "ticket 4711"},                         // a technical user
		{ada, "olga", ""},                                        // no reason
	} {
		_, err := p.Admin.Impersonate(ctx, try.actor, try.target, try.reason, 0)
		fmt.Fprintf(out, "%s impersonates %s: %v\n", try.actor.UserID, try.target, err)
	}

	// Olga reports that she cannot close occurrence 7. Ada, on the support
	// desk, looks through Olga's eyes for at most fifteen minutes.
	fmt.Fprintln(out, "\n== ada impersonates olga")
	token, err := p.Admin.Impersonate(ctx, ada, "olga", "ticket 4711: olga cannot close occurrences", 15*time.Minute)
	if err != nil {
		return err
	}
	steps := []struct{ label, method, path, token string }{
		{"ada as herself closes", "POST", "/m/riverton/occurrences/7/close", ""},
		{"ada as olga closes", "POST", "/m/riverton/occurrences/7/close", token},
		{"ada as olga updates", "POST", "/m/riverton/occurrences/7", token},
		{"ada as olga in another municipality", "POST", "/m/hillside/occurrences/7", token},
	}
	for _, s := range steps {
		if err := call(out, srv, s.label, s.method, s.path, "ada", s.token); err != nil {
			return err
		}
	}
	// The token belongs to ada's session: nobody else can use it.
	if err := call(out, srv, "alice presents ada's token", "POST", "/m/riverton/occurrences/7", "alice", token); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n== ada stops")
	if err := p.Admin.StopImpersonation(ctx, token); err != nil {
		return err
	}
	if err := call(out, srv, "the stopped token", "POST", "/m/riverton/occurrences/7", "ada", token); err != nil {
		return err
	}
	_, err = p.Admin.ResolveImpersonation(ctx, token)
	fmt.Fprintf(out, "resolve the stopped token: %v\n", err)

	// Decision events are written asynchronously: Query flushes them first.
	fmt.Fprintln(out, "\n== the audit trail")
	events, err := p.Audit.Query(ctx, audit.Query{})
	if err != nil {
		return err
	}
	for _, ev := range events {
		switch ev.Type {
		case audit.TypeImpersonationStart, audit.TypeImpersonationStop, audit.TypeDecisionDenied:
			allowed := ev.Allowed != nil && *ev.Allowed
			fmt.Fprintf(out, "%-20s actor=%-5s impersonator=%-3s user=%-8s allowed=%-5t %s %s\n",
				ev.Type, ev.ActorID, ev.ImpersonatorID, ev.UserID, allowed, ev.Reason, reasonOf(ev))
		}
	}
	return nil
}

func reasonOf(ev audit.Event) string {
	if r, ok := ev.Details["reason"].(string); ok {
		return fmt.Sprintf("%q", r)
	}
	return ""
}

// setup builds Riverton and Hillside with their staff.
func setup(ctx context.Context, path string) (*townhall.Platform, error) {
	db, err := townhall.OpenSQLite(path)
	if err != nil {
		return nil, err
	}
	p, err := townhall.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	sys := access.System()
	steps := []func() error{
		func() error {
			for _, l := range []location.Location{
				{ID: "riverton", Name: "Riverton", Level: location.Municipality},
				{ID: "hillside", Name: "Hillside", Level: location.Municipality},
			} {
				if _, err := p.Locations.Create(ctx, l); err != nil {
					return err
				}
			}
			return nil
		},
		func() error {
			for _, u := range []users.NewUser{
				{ID: "ada", Username: "ada"}, {ID: "bob", Username: "bob"},
				{ID: "alice", Username: "alice"}, {ID: "olga", Username: "olga"},
				{ID: "importer", Username: "importer", Kind: users.Technical},
			} {
				if _, err := p.Users.Create(ctx, u); err != nil {
					return err
				}
			}
			return nil
		},
		func() error { return p.Admin.SetSuperAdmin(ctx, sys, "ada", true) },
		func() error { return p.Admin.SetSuperAdmin(ctx, sys, "bob", true) },
	}
	for user, role := range map[string]string{"alice": access.RoleAdmin, "olga": access.RoleOperator} {
		steps = append(steps, func() error {
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

// newServer is the host service: its own sign-in (a header here), then
// townhall's impersonation middleware, then Require on each route.
func newServer(p *townhall.Platform) http.Handler {
	inMunicipality := access.WithMunicipalityPathValue("municipality")
	mux := http.NewServeMux()
	mux.Handle("POST /m/{municipality}/occurrences/{id}/close",
		p.Checker.Require("occurrences", "close", inMunicipality)(http.HandlerFunc(done("closed"))))
	mux.Handle("POST /m/{municipality}/occurrences/{id}",
		p.Checker.Require("occurrences", "update", inMunicipality)(http.HandlerFunc(done("updated"))))
	return authenticate(p.Admin.ImpersonationHeader("X-Impersonation")(mux))
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

// done answers with what was done, as whom and on whose behalf.
func done(what string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		s, _ := access.SubjectFrom(r.Context())
		who := s.UserID
		if by, ok := access.ImpersonatorFrom(r.Context()); ok {
			who += " (impersonated by " + by + ")"
		}
		fmt.Fprintf(w, "%s %s as %s", what, r.PathValue("id"), who)
	}
}

func call(out io.Writer, srv *httptest.Server, label, method, path, user, token string) error {
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-User", user)
	if token != "" {
		req.Header.Set("X-Impersonation", token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%-38s %d %s\n", label+":", resp.StatusCode, strings.TrimSpace(string(body)))
	return nil
}
