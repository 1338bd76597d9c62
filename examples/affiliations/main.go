// Command affiliations shows affiliated actions: health facilities submit
// insurance claims, and a claim administrator working for a facility sees
// and submits only that facility's claims, "the user must have the
// affiliated authority and a registered relation with the external partner
// attached to the recipient". When a facility is deleted, its links end and
// the users left with nothing (here a portal-only user) are deactivated.
//
//	go run ./examples/affiliations
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

func main() {
	dir, err := os.MkdirTemp("", "townhall-affiliations-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(context.Background(), filepath.Join(dir, "townhall.db"), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// Claim is the host service's own record: a claim a facility submitted.
// It lies where its facility does, so it has no location column.
type Claim struct {
	ID         string `gorm:"primaryKey;size:64"`
	FacilityID string `gorm:"size:64;not null"`
	Category   string `gorm:"size:64;not null"`
	Amount     int
}

// claimColumns tells townhall's record filter where a claim keeps its
// organisation and category.
var claimColumns = access.Columns{Organisation: "facility_id", Category: "category"}

// registry is the default registry plus claims: claim administrators (who
// also get every read-only action, like viewers) view and submit the claims
// of the facilities they are affiliated with.
func registry() (*access.Registry, error) {
	reg := access.DefaultRegistry()
	if err := reg.AddRole(access.Role{Name: "claim_admin", Inherits: []string{access.RoleViewer}}); err != nil {
		return nil, err
	}
	err := reg.AddModule("claims", map[string]access.Action{
		"view":   {Roles: []string{"claim_admin"}, ReadOnly: true, Affiliated: true},
		"submit": {Roles: []string{"claim_admin"}, Affiliated: true},
	})
	return reg, err
}

// people of the example.
var people = []struct{ id, label string }{
	{"ada", "ada (super admin)"},
	{"alice", "alice (admin of Portville)"},
	{"carl", "carl (claim admin, St Anne)"},
	{"dora", "dora (claim admin, Harbour Clinic)"},
	{"petra", "petra (St Anne portal user)"},
}

func run(ctx context.Context, path string, out io.Writer) error {
	p, db, err := open(ctx, path)
	if err != nil {
		return err
	}
	defer p.Close()

	fmt.Fprintln(out, "== who sees which claims (Checker.Filter as a GORM scope)")
	if err := showClaims(ctx, p, db, out); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n== who may submit a claim for which facility (Checker.Check)")
	for _, who := range []string{"carl", "dora", "alice", "petra"} {
		for _, facility := range []string{"st-anne", "harbour", "cliff-care"} {
			d, err := p.Checker.Check(ctx, access.Subject{UserID: who}, access.Request{
				Module: "claims", Action: "submit",
				Resource: &access.Resource{OrganisationID: facility, Category: "outpatient"},
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%-6s submit for %-10s  %s\n", who, facility, verdict(d))
		}
	}

	// Alice, who manages users in Portville, closes St Anne: its links end
	// and petra, who had nothing else, is deactivated in the same
	// transaction. carl keeps his account (his membership stays) but no
	// longer sees St Anne's claims.
	fmt.Fprintln(out, "\n== alice deletes St Anne")
	if err := p.Admin.DeleteOrganisation(ctx, access.Subject{UserID: "alice"}, "st-anne"); err != nil {
		return err
	}
	for _, id := range []string{"carl", "petra"} {
		u, err := p.Users.Get(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-6s active: %t\n", id, u.IsActive)
	}
	events, err := p.Audit.Query(ctx, audit.Query{ActorID: "alice"})
	if err != nil {
		return err
	}
	for _, ev := range events {
		if ev.Type == audit.TypeOrganisationDeleted || ev.Type == audit.TypeUserActive {
			fmt.Fprintf(out, "audit: %s by %s user=%q details=%v\n", ev.Type, ev.ActorID, ev.UserID, ev.Details)
		}
	}
	fmt.Fprintln(out)
	return showClaims(ctx, p, db, out)
}

// open opens the platform on a SQLite file and sets the example up.
func open(ctx context.Context, path string) (*townhall.Platform, *gorm.DB, error) {
	db, err := townhall.OpenSQLite(path)
	if err != nil {
		return nil, nil, err
	}
	reg, err := registry()
	if err != nil {
		return nil, nil, err
	}
	p, err := townhall.Open(ctx, db, townhall.WithRegistry(reg))
	if err != nil {
		return nil, nil, err
	}
	if err := setup(ctx, p, db); err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, db, nil
}

// setup builds the places, the facilities, the people and the claims.
func setup(ctx context.Context, p *townhall.Platform, db *gorm.DB) error {
	sys := access.System()
	for _, l := range []location.Location{
		{ID: "coast", Name: "Coast Region", Level: "region"},
		{ID: "bay", Name: "Bay District", Level: "district", ParentID: "coast"},
		{ID: "portville", Name: "Portville", Level: location.Municipality, ParentID: "bay"},
		{ID: "north-end", Name: "North End", Level: "village", ParentID: "portville"},
		{ID: "south-end", Name: "South End", Level: "village", ParentID: "portville"},
		{ID: "cliffton", Name: "Cliffton", Level: location.Municipality, ParentID: "bay"},
	} {
		if _, err := p.Locations.Create(ctx, l); err != nil {
			return err
		}
	}
	for _, o := range []affiliation.Organisation{
		{ID: "st-anne", Name: "St Anne Health Centre", Kind: "health_facility", LocationID: "north-end", Services: []string{"claims"}},
		{ID: "harbour", Name: "Harbour Clinic", Kind: "health_facility", LocationID: "south-end", Services: []string{"claims"}},
		{ID: "cliff-care", Name: "Cliff Care", Kind: "health_facility", LocationID: "cliffton", Services: []string{"claims"}},
	} {
		if _, err := p.Affiliations.CreateOrganisation(ctx, o); err != nil {
			return err
		}
	}
	for _, person := range people {
		if _, err := p.Users.Create(ctx, users.NewUser{ID: person.id, Username: person.id}); err != nil {
			return err
		}
	}
	if err := p.Admin.SetSuperAdmin(ctx, sys, "ada", true); err != nil {
		return err
	}
	if err := member(ctx, p, sys, "alice", access.RoleAdmin); err != nil {
		return err
	}
	// From here on alice does the work, within her own rights.
	alice := access.Subject{UserID: "alice"}
	for _, id := range []string{"carl", "dora"} {
		if err := member(ctx, p, alice, id, "claim_admin"); err != nil {
			return err
		}
	}
	since := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, l := range []affiliation.Link{
		{UserID: "carl", OrganisationID: "st-anne", ValidFrom: &since},
		{UserID: "dora", OrganisationID: "harbour", ValidFrom: &since},
		{UserID: "petra", OrganisationID: "st-anne"}, // a portal account: no membership at all
	} {
		if err := p.Admin.Link(ctx, alice, l); err != nil {
			return err
		}
	}
	if err := db.AutoMigrate(&Claim{}); err != nil {
		return err
	}
	return db.Create([]Claim{
		{ID: "c1", FacilityID: "st-anne", Category: "outpatient", Amount: 120},
		{ID: "c2", FacilityID: "st-anne", Category: "pharmacy", Amount: 35},
		{ID: "c3", FacilityID: "harbour", Category: "outpatient", Amount: 80},
		{ID: "c4", FacilityID: "cliff-care", Category: "inpatient", Amount: 900},
	}).Error
}

// member gives id role in Portville, approved.
func member(ctx context.Context, p *townhall.Platform, actor access.Subject, id, role string) error {
	if _, err := p.Admin.AddMember(ctx, actor, access.Membership{UserID: id, LocationID: "portville", Role: role}); err != nil {
		return err
	}
	return p.Admin.Approve(ctx, actor, id, "portville")
}

// showClaims lists, for each person, the claims the record filter lets
// them view.
func showClaims(ctx context.Context, p *townhall.Platform, db *gorm.DB, out io.Writer) error {
	for _, person := range people {
		ids, err := visibleClaims(ctx, p, db, access.Subject{UserID: person.id})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-35s sees [%s]\n", person.label, strings.Join(ids, " "))
	}
	return nil
}

// visibleClaims is what a host's list endpoint does: one query, scoped by
// the subject's filter.
func visibleClaims(ctx context.Context, p *townhall.Platform, db *gorm.DB, s access.Subject) ([]string, error) {
	f, err := p.Checker.Filter(ctx, s, "claims", "view")
	if err != nil {
		return nil, err
	}
	ids := []string{}
	err = db.WithContext(ctx).Model(&Claim{}).Scopes(f.Scope(claimColumns)).Order("id").Pluck("id", &ids).Error
	return ids, err
}

func verdict(d access.Decision) string {
	if d.Allowed {
		return fmt.Sprintf("allow (%s as %s@%s)", d.Reason, d.Role, d.Domain)
	}
	return fmt.Sprintf("deny  (%s)", d.Reason)
}
