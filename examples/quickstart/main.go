// Command quickstart builds a small municipal platform on an embedded SQLite
// file and prints who may do what, and why.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "townhall-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	db, err := townhall.OpenSQLite(filepath.Join(dir, "townhall.db"))
	if err != nil {
		return err
	}
	p, err := townhall.Open(ctx, db)
	if err != nil {
		return err
	}
	defer p.Close()
	sys := access.System()

	// The location tree: a region, a district, two municipalities.
	for _, l := range []location.Location{
		{ID: "north", Name: "North Region", Level: "region"},
		{ID: "lakes", Name: "Lakes District", Level: "district", ParentID: "north"},
		{ID: "riverton", Name: "Riverton", Level: "municipality", ParentID: "lakes"},
		{ID: "hillside", Name: "Hillside", Level: "municipality", ParentID: "lakes"},
	} {
		if _, err := p.Locations.Create(ctx, l); err != nil {
			return err
		}
	}

	// People: a super admin, a platform admin, one user per municipal role in
	// Riverton, an unapproved and a deactivated operator.
	newUser := func(id string) error {
		_, err := p.Users.Create(ctx, users.NewUser{ID: id, Username: id, IsStaff: true})
		return err
	}
	for _, id := range []string{"ada", "pat", "alice", "mark", "olga", "vera", "una", "dina"} {
		if err := newUser(id); err != nil {
			return err
		}
	}
	if err := p.Admin.SetSuperAdmin(ctx, sys, "ada", true); err != nil {
		return err
	}
	if err := p.Admin.Grant(ctx, sys, "pat", access.RolePlatformAdmin, "*"); err != nil {
		return err
	}
	for user, role := range map[string]string{
		"alice": access.RoleAdmin, "mark": access.RoleManager, "olga": access.RoleOperator,
		"vera": access.RoleViewer, "una": access.RoleOperator, "dina": access.RoleOperator,
	} {
		if _, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: user, LocationID: "riverton", Role: role}); err != nil {
			return err
		}
	}
	// Riverton requires approval: alice (its admin) is approved by the
	// system, and then approves her staff — except una.
	if err := p.Admin.Approve(ctx, sys, "alice", "riverton"); err != nil {
		return err
	}
	alice := access.Subject{UserID: "alice"}
	for _, u := range []string{"mark", "olga", "vera", "dina"} {
		if err := p.Admin.Approve(ctx, alice, u, "riverton"); err != nil {
			return err
		}
	}
	if err := p.Admin.SetProfileActive(ctx, alice, "dina", "riverton", false); err != nil {
		return err
	}
	// Equipment is switched off in Hillside.
	if err := p.Admin.SetModuleEnabled(ctx, access.Subject{UserID: "pat"}, "hillside", "equipment", false); err != nil {
		return err
	}

	subjects := []struct{ label, id string }{
		{"ada (super admin)", "ada"}, {"pat (platform_admin)", "pat"},
		{"alice (admin)", "alice"}, {"mark (manager)", "mark"}, {"olga (operator)", "olga"},
		{"vera (viewer)", "vera"}, {"una (unapproved)", "una"}, {"dina (deactivated)", "dina"},
		{"anonymous", ""},
	}
	requests := []access.Request{
		{Municipality: "riverton", Module: "occurrences", Action: "view"},
		{Municipality: "riverton", Module: "occurrences", Action: "update"},
		{Municipality: "riverton", Module: "occurrences", Action: "delete"},
		{Municipality: "riverton", Module: "users", Action: "manage"},
		{Municipality: "hillside", Module: "occurrences", Action: "update"},
		{Municipality: "hillside", Module: "equipment", Action: "view"},
		{Module: "modules", Action: "configure"},
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	header := []string{"subject"}
	for _, r := range requests {
		where := r.Municipality
		if where == "" {
			where = "platform"
		}
		header = append(header, fmt.Sprintf("%s:%s@%s", r.Module, r.Action, where))
	}
	fmt.Fprintln(w, strings.Join(header, "\t"))
	for _, s := range subjects {
		row := []string{s.label}
		for _, r := range requests {
			d, err := p.Checker.Check(ctx, access.Subject{UserID: s.id}, r)
			if err != nil {
				return err
			}
			mark := "deny"
			if d.Allowed {
				mark = "allow"
			}
			row = append(row, mark+" ("+string(d.Reason)+")")
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Println()
	for _, s := range subjects[2:6] {
		ok, err := p.Checker.UserCanAccessModule(ctx, access.Subject{UserID: s.id}, "equipment", "create")
		if err != nil {
			return err
		}
		fmt.Printf("user_can_access_module(%s, equipment, create) = %v\n", s.id, ok)
	}
	return p.Audit.Verify(ctx)
}
