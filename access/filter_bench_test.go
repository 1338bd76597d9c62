package access_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// BenchmarkFilter measures building a record filter and running a scoped
// count over a host table of 10,000 records spread over 293 locations
// (1 region, 4 districts, 8 municipalities each, 8 villages each), for a
// manager at a district whose module is disabled in two of its
// municipalities, with a second, category-restricted grant elsewhere. The
// baseline is openIMIS's helper: every allowed location ID, read from the
// database, as a flat IN list. The database is the test harness's
// (SQLite unless TOWNHALL_TEST_POSTGRES_DSN or TOWNHALL_TEST_MYSQL_DSN).
func BenchmarkFilter(b *testing.B) {
	ctx := context.Background()
	sys := access.System()
	p := testkit.Open(b)
	testkit.Locations(b, p, location.Location{ID: "R", Level: "region"})
	var all []string
	for d := range 4 {
		did := fmt.Sprintf("D%d", d)
		testkit.Locations(b, p, location.Location{ID: did, Level: "district", ParentID: "R"})
		all = append(all, did)
		for m := range 8 {
			mid := fmt.Sprintf("%s-M%d", did, m)
			testkit.Locations(b, p, location.Location{ID: mid, Level: "municipality", ParentID: did})
			all = append(all, mid)
			for v := range 8 {
				vid := fmt.Sprintf("%s-V%d", mid, v)
				testkit.Locations(b, p, location.Location{ID: vid, Level: "village", ParentID: mid})
				all = append(all, vid)
			}
		}
	}
	testkit.Member(b, p, "dm", access.RoleManager, "D0")
	testkit.Member(b, p, "op", access.RoleOperator, "D1-M2-V3")
	_, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: "dm", LocationID: "D2-M3", Role: access.RoleManager, AllowedCategories: []string{"roads"}})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Admin.Approve(ctx, sys, "dm", "D2-M3"); err != nil {
		b.Fatal(err)
	}
	for _, m := range []string{"D0-M1", "D0-M5"} {
		if err := p.Admin.SetModuleEnabled(ctx, sys, m, "equipment", false); err != nil {
			b.Fatal(err)
		}
	}
	db := p.DB()
	if err := db.Exec("CREATE TABLE records (id INTEGER PRIMARY KEY, location_id VARCHAR(64), category VARCHAR(64), org_id VARCHAR(64))").Error; err != nil {
		b.Fatal(err)
	}
	if err := db.Exec("CREATE INDEX records_location ON records (location_id)").Error; err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cats := []string{"roads", "water", "parks"}
	rows := make([]hostRow, 10000)
	for i := range rows {
		l, c := all[rng.IntN(len(all))], cats[rng.IntN(len(cats))]
		rows[i] = hostRow{ID: i + 1, Location: &l, Category: &c}
	}
	if err := db.Table("records").CreateInBatches(rows, 500).Error; err != nil {
		b.Fatal(err)
	}
	dm := access.Subject{UserID: "dm"}
	f, err := p.Checker.Filter(ctx, dm, "equipment", "create")
	if err != nil {
		b.Fatal(err)
	}
	var want int64
	if err := db.Table("records").Scopes(f.Scope(hostColumns)).Count(&want).Error; err != nil {
		b.Fatal(err)
	}
	b.Logf("%s: %d of %d records in scope", db.Dialector.Name(), want, len(rows))

	b.Run("Build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Checker.Filter(ctx, dm, "equipment", "create"); err != nil {
				b.Fatal(err)
			}
		}
	})
	count := func(b *testing.B, scope func(*gorm.DB) *gorm.DB) int64 {
		var n int64
		if err := db.Table("records").Scopes(scope).Count(&n).Error; err != nil {
			b.Fatal(err)
		}
		return n
	}
	b.Run("ScopedCount", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := p.Checker.Filter(ctx, dm, "equipment", "create")
			if err != nil {
				b.Fatal(err)
			}
			if n := count(b, f.Scope(hostColumns)); n != want {
				b.Fatalf("%d records in scope, want %d", n, want)
			}
		}
	})
	// A small scope: an operator at a village (about 34 records).
	b.Run("ScopedCountVillage", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f, err := p.Checker.Filter(ctx, access.Subject{UserID: "op"}, "equipment", "update")
			if err != nil {
				b.Fatal(err)
			}
			if n := count(b, f.Scope(hostColumns)); n == 0 || n > 100 {
				b.Fatalf("%d records in scope", n)
			}
		}
	})
	// The baseline: every allowed location, read per request, as a flat
	// IN list (with the category-restricted grant's locations apart).
	b.Run("FlatINBaseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			wide, err := allowedLocations(ctx, p.Locations, "D0", "D0-M1", "D0-M5")
			if err != nil {
				b.Fatal(err)
			}
			narrow, err := allowedLocations(ctx, p.Locations, "D2-M3")
			if err != nil {
				b.Fatal(err)
			}
			n := count(b, func(db *gorm.DB) *gorm.DB {
				return db.Where("location_id IN ? OR (location_id IN ? AND category IN ?)", wide, narrow, []string{"roads"})
			})
			if n != want {
				b.Fatalf("%d records in scope, want %d", n, want)
			}
		}
	})
}

// allowedLocations lists root and its descendants, minus the subtrees of
// the excluded municipalities: the flat list openIMIS's helper builds.
func allowedLocations(ctx context.Context, s *location.Store, root string, excluded ...string) ([]string, error) {
	desc, err := s.Descendants(ctx, root)
	if err != nil {
		return nil, err
	}
	out := []string{root}
	skip := map[string]bool{}
	for _, e := range excluded {
		sub, err := s.Descendants(ctx, e)
		if err != nil {
			return nil, err
		}
		skip[e] = true
		for _, l := range sub {
			skip[l.ID] = true
		}
	}
	for _, l := range desc {
		if !skip[l.ID] {
			out = append(out, l.ID)
		}
	}
	return slices.Clip(out), nil
}
