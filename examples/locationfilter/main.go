// Command locationfilter lists a host application's own records through
// townhall's record filter: the host keeps occurrences in its table (with
// location and category columns), and every query goes through
// Checker.Filter's GORM scope, which returns exactly the rows Check would
// allow one by one.
//
//	go run ./examples/locationfilter
//
// It runs on a temporary SQLite file and prints, for several users, which
// occurrences they may update, and the query that found them (values
// shown inline for reading; the query sends them as parameters).
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"gorm.io/gorm"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// Occurrence is the host's own model: a citizen's report at a location.
// LocationID and Category are NULL when unknown.
type Occurrence struct {
	ID         int
	Title      string
	LocationID *string `gorm:"size:64;index"`
	Category   *string `gorm:"size:64"`
}

func main() {
	dir, err := os.MkdirTemp("", "townhall-locationfilter-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(context.Background(), filepath.Join(dir, "townhall.db"), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// The users of the example and the occurrences each may update.
var people = []struct{ id, about string }{
	{"ada", "super admin"},
	{"mark", "manager of the Lakes district, occurrences off in Hillside"},
	{"olga", "operator in Riverton, roads only"},
	{"otto", "operator at Mill Village"},
	{"una", "operator in Riverton, not approved yet"},
}

func run(ctx context.Context, path string, out io.Writer) error {
	p, err := setup(ctx, path)
	if err != nil {
		return err
	}
	defer p.Close()
	db := p.DB()
	for _, u := range people {
		titles, sql, err := updatable(ctx, p, db, u.id)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s (%s) may update %d: %s\n", u.id, u.about, len(titles), strings.Join(titles, ", "))
		fmt.Fprintf(out, "    %s\n", sql)
	}
	return nil
}

// updatable lists the occurrences user may update (occurrences:update),
// and the query that found them.
func updatable(ctx context.Context, p *townhall.Platform, db *gorm.DB, user string) ([]string, string, error) {
	f, err := p.Checker.Filter(ctx, access.Subject{UserID: user}, "occurrences", "update")
	if err != nil {
		return nil, "", err
	}
	scope := f.Scope(access.Columns{Location: "location_id", Category: "category"})
	var found []Occurrence
	if err := db.Scopes(scope).Order("id").Find(&found).Error; err != nil {
		return nil, "", err
	}
	titles := make([]string, len(found))
	for i, o := range found {
		titles[i] = o.Title
	}
	sql := db.ToSQL(func(tx *gorm.DB) *gorm.DB { return tx.Scopes(scope).Order("id").Find(&[]Occurrence{}) })
	return titles, sql, nil
}

// setup builds the platform: a region with one district of two
// municipalities, a village, staff, and the host's occurrences table.
//
//	north (region) ── lakes (district) ─┬─ riverton ── mill (village)
//	                                    └─ hillside
//	south (region) ── brook (municipality)
func setup(ctx context.Context, path string) (*townhall.Platform, error) {
	db, err := townhall.OpenSQLite(path)
	if err != nil {
		return nil, err
	}
	p, err := townhall.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	if err := populate(ctx, p); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func populate(ctx context.Context, p *townhall.Platform) error {
	sys := access.System()
	for _, l := range []location.Location{
		{ID: "north", Name: "North Region", Level: "region"},
		{ID: "lakes", Name: "Lakes District", Level: "district", ParentID: "north"},
		{ID: "riverton", Name: "Riverton", Level: "municipality", ParentID: "lakes"},
		{ID: "hillside", Name: "Hillside", Level: "municipality", ParentID: "lakes"},
		{ID: "mill", Name: "Mill Village", Level: "village", ParentID: "riverton"},
		{ID: "south", Name: "South Region", Level: "region"},
		{ID: "brook", Name: "Brook", Level: "municipality", ParentID: "south"},
	} {
		if _, err := p.Locations.Create(ctx, l); err != nil {
			return err
		}
	}
	for _, u := range people {
		if _, err := p.Users.Create(ctx, users.NewUser{ID: u.id, Username: u.id, IsStaff: true}); err != nil {
			return err
		}
	}
	if err := p.Admin.SetSuperAdmin(ctx, sys, "ada", true); err != nil {
		return err
	}
	members := []access.Membership{
		{UserID: "mark", LocationID: "lakes", Role: access.RoleManager},
		{UserID: "olga", LocationID: "riverton", Role: access.RoleOperator, AllowedCategories: []string{"roads"}},
		{UserID: "otto", LocationID: "mill", Role: access.RoleOperator},
		{UserID: "una", LocationID: "riverton", Role: access.RoleOperator},
	}
	for _, m := range members {
		if _, err := p.Admin.AddMember(ctx, sys, m); err != nil {
			return err
		}
		if m.UserID != "una" {
			if err := p.Admin.Approve(ctx, sys, m.UserID, m.LocationID); err != nil {
				return err
			}
		}
	}
	// Occurrences are switched off in Hillside.
	if err := p.Admin.SetModuleEnabled(ctx, sys, "hillside", "occurrences", false); err != nil {
		return err
	}

	// The host's own table, in the same database as townhall's.
	db := p.DB()
	if err := db.AutoMigrate(&Occurrence{}); err != nil {
		return err
	}
	str := func(s string) *string { return &s }
	return db.Create([]Occurrence{
		{Title: "pothole on Main Street", LocationID: str("riverton"), Category: str("roads")},
		{Title: "broken street light", LocationID: str("riverton"), Category: str("lighting")},
		{Title: "flooded lane", LocationID: str("mill"), Category: str("roads")},
		{Title: "fallen tree", LocationID: str("mill")},
		{Title: "landslide", LocationID: str("hillside"), Category: str("roads")},
		{Title: "bridge damage", LocationID: str("lakes"), Category: str("roads")},
		{Title: "river pollution", LocationID: str("brook"), Category: str("water")},
		{Title: "anonymous tip", Category: str("roads")},
	}).Error
}
