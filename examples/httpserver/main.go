// Command httpserver is a small net/http service on townhall: users sign
// in with a password into a session (a cookie for browsers, the same token
// as a bearer credential for scripts), programs use API keys, a list route
// returns only the records the subject may work on (Checker.Filter), a
// record route decides on the record itself (Require with WithResource),
// and users sign out.
//
//	go run ./examples/httpserver            # listens on 127.0.0.1:8080
//	curl -s -d username=olga -d password='olga password' localhost:8080/login
//	curl -s -H "Authorization: Bearer ths_..." localhost:8080/worklist
//	curl -s localhost:8080/metrics            # Prometheus metrics
//
// Session cookies are Secure: browsers send them to https origins and to
// localhost only.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"gorm.io/gorm"

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
	key, err := p.Users.CreateAPIKey(context.Background(), "reporter", "example")
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("API key of the technical user reporter: %s", key)
	h, err := newServer(p)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on %s (metrics at /metrics)", *addr)
	log.Fatal(http.ListenAndServe(*addr, obs.serve(h)))
}

// Occurrence is the host's own record: a report located in the tree.
type Occurrence struct {
	ID         int     `json:"id"`
	Title      string  `json:"title"`
	LocationID *string `json:"location_id"`
	Category   *string `json:"category"`
	Closed     bool    `json:"closed"`
}

// Passwords of the example's users: "<username> password".
func password(user string) string { return user + " password" }

// setup opens a platform with two municipalities, a few staff with
// passwords, a technical user and some occurrences.
func setup(ctx context.Context, path string, opts ...townhall.Option) (*townhall.Platform, error) {
	db, err := townhall.OpenSQLite(path)
	if err != nil {
		return nil, err
	}
	p, err := townhall.Open(ctx, db, opts...)
	if err != nil {
		return nil, err
	}
	if err := seed(ctx, p); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func seed(ctx context.Context, p *townhall.Platform) error {
	sys := access.System()
	for _, l := range []location.Location{
		{ID: "riverton", Level: "municipality"},
		{ID: "oakfield", Level: "village", ParentID: "riverton"},
		{ID: "hillside", Level: "municipality"},
	} {
		if _, err := p.Locations.Create(ctx, l); err != nil {
			return err
		}
	}
	staff := []access.Membership{
		{UserID: "olga", LocationID: "riverton", Role: access.RoleOperator, AllowedCategories: []string{"roads"}},
		{UserID: "vera", LocationID: "riverton", Role: access.RoleViewer},
		{UserID: "alice", LocationID: "riverton", Role: access.RoleAdmin},
	}
	for _, m := range staff {
		if _, err := p.Users.Create(ctx, users.NewUser{ID: m.UserID, Username: m.UserID, Password: password(m.UserID)}); err != nil {
			return err
		}
		if _, err := p.Admin.AddMember(ctx, sys, m); err != nil {
			return err
		}
		if err := p.Admin.Approve(ctx, sys, m.UserID, m.LocationID); err != nil {
			return err
		}
	}
	if _, err := p.Users.Create(ctx, users.NewUser{ID: "reporter", Username: "reporter", Kind: users.Technical}); err != nil {
		return err
	}
	db := p.DB()
	if err := db.AutoMigrate(&Occurrence{}); err != nil {
		return err
	}
	at := func(s string) *string { return &s }
	return db.Create([]Occurrence{
		{ID: 1, Title: "pothole on Main St", LocationID: at("riverton"), Category: at("roads")},
		{ID: 2, Title: "streetlight out", LocationID: at("riverton"), Category: at("lighting")},
		{ID: 3, Title: "washed-out lane", LocationID: at("oakfield"), Category: at("roads")},
		{ID: 4, Title: "landslide", LocationID: at("hillside"), Category: at("roads")},
		{ID: 5, Title: "anonymous tip"},
	}).Error
}

// service holds what the handlers need.
type service struct {
	p    *townhall.Platform
	auth *access.Authenticator
	db   *gorm.DB
}

// newServer wires the service: the Authenticator in front, Require on
// every guarded route. Add routes with (*service).routes's pattern.
func newServer(p *townhall.Platform) (http.Handler, error) {
	auth, err := p.Authenticator()
	if err != nil {
		return nil, err
	}
	s := &service{p: p, auth: auth, db: p.DB()}
	mux := http.NewServeMux()
	s.routes(mux)
	return auth.Middleware(mux), nil
}

func (s *service) routes(mux *http.ServeMux) {
	c := s.p.Checker
	record := access.WithResource(s.occurrence)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /me", s.me)
	// The list: a gate first (can this subject update occurrences
	// anywhere?), then the filter picks the rows.
	mux.Handle("GET /worklist", c.Require("occurrences", "update")(http.HandlerFunc(s.worklist)))
	// Records: Require decides on the record the path names.
	mux.Handle("GET /occurrences/{id}", c.Require("occurrences", "view", record)(http.HandlerFunc(s.show)))
	mux.Handle("POST /occurrences/{id}/close", c.Require("occurrences", "close", record)(http.HandlerFunc(s.close)))
	mux.Handle("DELETE /occurrences/{id}", c.Require("occurrences", "delete", record, access.WithNotFoundOnDeny())(http.HandlerFunc(s.delete)))
	// Per municipality: the municipality comes from the path.
	mux.Handle("GET /m/{municipality}/equipment",
		c.Require("equipment", "view", access.WithMunicipalityPathValue("municipality"))(http.HandlerFunc(s.equipment)))
}

func (s *service) login(w http.ResponseWriter, r *http.Request) {
	in, err := s.p.Users.Login(r.Context(), r.FormValue("username"), r.FormValue("password"))
	switch {
	case errors.Is(err, users.ErrLocked):
		access.WriteProblem(w, access.Problem{Status: http.StatusTooManyRequests, Detail: "too many failed sign-ins; try again later"})
		return
	case err != nil:
		// One answer for unknown users, wrong passwords and inactive
		// accounts: the response does not tell which.
		access.WriteProblem(w, access.Problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "wrong username or password"})
		return
	}
	s.auth.SetSessionCookie(w, in)
	writeJSON(w, map[string]any{"user": in.User.ID, "token": in.Token, "expires_at": in.Session.ExpiresAt})
}

func (s *service) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.auth.SignOut(w, r); err != nil {
		access.WriteProblem(w, access.Problem{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: "not signed in"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *service) me(w http.ResponseWriter, r *http.Request) {
	subject, _ := access.SubjectFrom(r.Context())
	out := map[string]any{"user": subject.UserID}
	if sess, ok := access.SessionFrom(r.Context()); ok {
		out["session"] = sess.ID
	}
	writeJSON(w, out)
}

// occurrence is the resource function of the record routes: (nil, nil)
// for a record that does not exist.
func (s *service) occurrence(r *http.Request) (*access.Resource, error) {
	o, err := s.find(r)
	if o == nil || err != nil {
		return nil, err
	}
	res := &access.Resource{}
	if o.LocationID != nil {
		res.LocationID = *o.LocationID
	}
	if o.Category != nil {
		res.Category = *o.Category
	}
	return res, nil
}

func (s *service) find(r *http.Request) (*Occurrence, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return nil, nil
	}
	var o Occurrence
	err = s.db.WithContext(r.Context()).Take(&o, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	return &o, err
}

func (s *service) worklist(w http.ResponseWriter, r *http.Request) {
	subject, _ := access.SubjectFrom(r.Context())
	f, err := s.p.Checker.Filter(r.Context(), subject, "occurrences", "update")
	if err != nil {
		access.WriteProblem(w, access.Problem{Status: http.StatusInternalServerError, Detail: "filter failed"})
		return
	}
	var list []Occurrence
	err = s.db.WithContext(r.Context()).Scopes(f.Scope(access.Columns{Location: "location_id", Category: "category"})).
		Order("id").Find(&list).Error
	if err != nil {
		access.WriteProblem(w, access.Problem{Status: http.StatusInternalServerError, Detail: "query failed"})
		return
	}
	writeJSON(w, list)
}

func (s *service) show(w http.ResponseWriter, r *http.Request) {
	o, err := s.find(r)
	if err != nil || o == nil {
		access.WriteProblem(w, access.Problem{Status: http.StatusInternalServerError, Detail: "the record went away"})
		return
	}
	writeJSON(w, o)
}

func (s *service) close(w http.ResponseWriter, r *http.Request) {
	d, _ := access.DecisionFrom(r.Context())
	if err := s.db.WithContext(r.Context()).Model(&Occurrence{}).Where("id = ?", r.PathValue("id")).
		Update("closed", true).Error; err != nil {
		access.WriteProblem(w, access.Problem{Status: http.StatusInternalServerError, Detail: "update failed"})
		return
	}
	writeJSON(w, map[string]any{"closed": r.PathValue("id"), "as": d.Role + "@" + d.Domain})
}

func (s *service) delete(w http.ResponseWriter, r *http.Request) {
	if err := s.db.WithContext(r.Context()).Delete(&Occurrence{}, r.PathValue("id")).Error; err != nil {
		access.WriteProblem(w, access.Problem{Status: http.StatusInternalServerError, Detail: "delete failed"})
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *service) equipment(w http.ResponseWriter, r *http.Request) {
	d, _ := access.DecisionFrom(r.Context())
	writeJSON(w, map[string]any{"municipality": r.PathValue("municipality"), "allowed": d.Reason})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
