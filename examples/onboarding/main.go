// Command onboarding walks the seed's staff onboarding checklist end to end
// on an embedded SQLite file: a municipal admin brings a new member of
// staff in (user, membership with a role, department, categories), the
// checklist shows what is still missing, the admin approves, and the new
// member can work — within their categories, and without being able to
// raise their own access.
//
//	go run ./examples/onboarding
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

func main() {
	dir, err := os.MkdirTemp("", "townhall-onboarding-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(context.Background(), filepath.Join(dir, "townhall.db"), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run onboards olga at Riverton on a new database at path, printing each
// step to out. It returns an error if any step does not go as the seed's
// governance rules say it must.
func run(ctx context.Context, path string, out io.Writer) error {
	db, err := townhall.OpenSQLite(path)
	if err != nil {
		return err
	}
	p, err := townhall.Open(ctx, db, townhall.WithMailer(outbox{out}))
	if err != nil {
		return err
	}
	defer p.Close()
	sys := access.System()

	// Bootstrap (System): the places, the department, and Riverton's
	// admin, alice, approved.
	for _, l := range []location.Location{
		{ID: "lakes", Name: "Lakes District", Level: "district"},
		{ID: "riverton", Name: "Riverton", Level: "municipality", ParentID: "lakes"},
	} {
		if _, err := p.Locations.Create(ctx, l); err != nil {
			return err
		}
	}
	if _, err := p.Profiles.CreateDepartment(ctx, users.Department{
		ID: "roads", MunicipalityID: "riverton", Name: "Roads", Categories: []string{"potholes", "streetlights"},
	}); err != nil {
		return err
	}
	if _, err := p.Users.Create(ctx, users.NewUser{ID: "alice", Username: "alice", IsStaff: true}); err != nil {
		return err
	}
	if _, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: "alice", LocationID: "riverton", Role: access.RoleAdmin}); err != nil {
		return err
	}
	if err := p.Admin.Approve(ctx, sys, "alice", "riverton"); err != nil {
		return err
	}
	alice := access.Subject{UserID: "alice"}
	olga := access.Subject{UserID: "olga"}
	checklist := func(step string) error {
		c, err := p.Profiles.Onboarding(ctx, "olga", "riverton")
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\n== %s\n%s", step, c)
		return nil
	}
	pothole := access.Request{Module: "occurrences", Action: "update",
		Resource: &access.Resource{LocationID: "riverton", Category: "potholes"}}
	streetlight := access.Request{Module: "occurrences", Action: "update",
		Resource: &access.Resource{LocationID: "riverton", Category: "streetlights"}}
	decide := func(label string, req access.Request) (access.Decision, error) {
		d, err := p.Checker.Check(ctx, olga, req)
		if err != nil {
			return d, err
		}
		verdict := "denied"
		if d.Allowed {
			verdict = "allowed"
		}
		fmt.Fprintf(out, "olga updates a %s report: %s (%s)\n", label, verdict, d.Reason)
		return d, nil
	}

	// 1. The user: a member of staff with a sign-in of her own.
	if _, err := p.Users.Create(access.WithSubject(ctx, alice), users.NewUser{
		ID: "olga", Username: "olga", Email: "olga@riverton.example", FirstName: "Olga", LastName: "Berg",
		Password: "a long enough passphrase", IsStaff: true,
	}); err != nil {
		return err
	}
	if err := checklist("user created"); err != nil {
		return err
	}

	// 2. The membership: profile, role, department and categories in one
	// transaction. Riverton requires approval, so it starts unapproved.
	if _, err := p.Admin.AddMember(ctx, alice, access.Membership{
		UserID: "olga", LocationID: "riverton", Role: access.RoleStaff,
		DepartmentID: "roads", AllowedCategories: []string{"potholes"},
	}); err != nil {
		return err
	}
	if err := checklist("membership added by alice (admin of riverton)"); err != nil {
		return err
	}
	if d, err := decide("pothole", pothole); err != nil || d.Allowed {
		return unexpected("an unapproved member works", err)
	}

	// 3. Approval: staff are approved before they work; the welcome
	// email goes out through the host's mailer.
	if err := p.Admin.Approve(ctx, alice, "olga", "riverton"); err != nil {
		return err
	}
	if err := p.Users.SendWelcome(access.WithSubject(ctx, alice), "olga"); err != nil {
		return err
	}
	c, err := p.Profiles.Onboarding(ctx, "olga", "riverton")
	if err != nil {
		return err
	}
	if err := checklist("approved by alice, welcomed"); err != nil {
		return err
	}
	if !c.Done() {
		return unexpected("the checklist is not complete after approval", nil)
	}
	fmt.Fprintln(out)
	if d, err := decide("pothole", pothole); err != nil || !d.Allowed {
		return unexpected("olga cannot work on her own category", err)
	}
	if d, err := decide("streetlight", streetlight); err != nil || d.Allowed {
		return unexpected("olga works outside her categories", err)
	}

	// 4. No escalation: "a user can only add his own role".
	err = p.Admin.Grant(ctx, olga, "olga", access.RoleAdmin, "riverton")
	if !errors.Is(err, access.ErrForbidden) {
		return unexpected("olga made herself admin", err)
	}
	fmt.Fprintf(out, "olga grants herself admin: refused (%v)\n", err)

	// 5. The record: every step, and the refusal, in the audit log.
	events, err := p.Audit.Query(ctx, audit.Query{UserID: "olga"})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "\naudit trail of olga's onboarding:")
	for _, ev := range events {
		outcome := ""
		if ev.Allowed != nil && !*ev.Allowed {
			outcome = " (refused)"
		}
		fmt.Fprintf(out, "  #%d %-15s by %s%s\n", ev.Seq, ev.Type, ev.ActorID, outcome)
	}
	return p.Audit.Verify(ctx)
}

// outbox stands in for the host's mail queue: it prints what it is given.
type outbox struct{ out io.Writer }

func (o outbox) Send(_ context.Context, m users.Message) error {
	fmt.Fprintf(o.out, "mail: %s message for user %s\n", m.Kind, m.UserID)
	return nil
}

func unexpected(what string, err error) error {
	if err != nil {
		return fmt.Errorf("onboarding: %s: %w", what, err)
	}
	return errors.New("onboarding: " + what)
}
