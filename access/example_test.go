package access_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// examplePlatform opens a platform on a temporary SQLite file with a
// district, a municipality and an operator approved there.
func examplePlatform() (*townhall.Platform, func()) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "townhall-example-")
	if err != nil {
		panic(err)
	}
	db, err := townhall.OpenSQLite(filepath.Join(dir, "townhall.db"))
	if err != nil {
		panic(err)
	}
	p, err := townhall.Open(ctx, db, townhall.WithKDF(users.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}))
	if err != nil {
		panic(err)
	}
	sys := access.System()
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	_, err = p.Locations.Create(ctx, location.Location{ID: "lakes", Level: "district"})
	must(err)
	_, err = p.Locations.Create(ctx, location.Location{ID: "riverton", Level: "municipality", ParentID: "lakes"})
	must(err)
	_, err = p.Users.Create(ctx, users.NewUser{ID: "olga", Username: "olga"})
	must(err)
	_, err = p.Admin.AddMember(ctx, sys, access.Membership{UserID: "olga", LocationID: "riverton", Role: access.RoleStaff})
	must(err)
	must(p.Admin.Approve(ctx, sys, "olga", "riverton"))
	return p, func() { p.Close(); os.RemoveAll(dir) }
}

func ExampleChecker_Check() {
	p, done := examplePlatform()
	defer done()
	ctx := context.Background()
	olga := access.Subject{UserID: "olga"}

	d, err := p.Checker.Check(ctx, olga, access.Request{Municipality: "riverton", Module: "occurrences", Action: "update"})
	fmt.Println(d.Allowed, d.Reason, d.Role, d.Domain, err)

	d, err = p.Checker.Check(ctx, olga, access.Request{Municipality: "riverton", Module: "occurrences", Action: "close"})
	fmt.Println(d.Allowed, d.Reason, err)

	d, err = p.Checker.Check(ctx, access.Anonymous(), access.Request{Municipality: "riverton", Module: "occurrences", Action: "view"})
	fmt.Println(d.Allowed, d.Reason, err)

	// A record decision: the resource's location must lie in a grant's subtree.
	d, err = p.Checker.Check(ctx, olga, access.Request{Module: "equipment", Action: "update",
		Resource: &access.Resource{LocationID: "lakes"}})
	fmt.Println(d.Allowed, d.Reason, err)
	// Output:
	// true role operator riverton <nil>
	// false no_grant <nil>
	// true public <nil>
	// false out_of_scope <nil>
}

func ExampleChecker_UserCanAccessModule() {
	p, done := examplePlatform()
	defer done()
	ctx := context.Background()
	for _, action := range []string{"view", "update", "delete"} {
		ok, err := p.Checker.UserCanAccessModule(ctx, access.Subject{UserID: "olga"}, "equipment", action)
		fmt.Println(action, ok, err)
	}
	// Output:
	// view true <nil>
	// update true <nil>
	// delete false <nil>
}

func ExampleChecker_Require() {
	p, done := examplePlatform()
	defer done()

	mux := http.NewServeMux()
	mux.Handle("POST /m/{municipality}/occurrences",
		p.Checker.Require("occurrences", "update", access.WithMunicipalityPathValue("municipality"))(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				d, _ := access.DecisionFrom(r.Context())
				fmt.Fprintf(w, "updated by %s", d.Role)
			})))
	// The host's authentication puts the subject in the context.
	signIn := func(user string) *http.Request {
		r := httptest.NewRequest("POST", "/m/riverton/occurrences", nil)
		if user != "" {
			r = r.WithContext(access.WithSubject(r.Context(), access.Subject{UserID: user}))
		}
		return r
	}
	for _, user := range []string{"olga", ""} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, signIn(user))
		fmt.Println(w.Code, w.Header().Get("Content-Type"))
	}
	// Output:
	// 200 text/plain; charset=utf-8
	// 401 application/problem+json
}
