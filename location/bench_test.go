package location_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/location"
)

// The benchmark tree: 10 regions × 10 districts × 100 municipalities × 10
// villages = 110,110 locations, bulk-loaded (rows and closure rows in
// batches, one transaction) because 110,110 audited Creates would dominate
// the run; BenchmarkTree100k/Create measures the per-row Create on top.
const (
	benchRegions        = 10
	benchDistricts      = 10 // per region
	benchMunicipalities = 100
	benchVillages       = 10
)

type benchLocation struct {
	ID, Name, Level      string
	ParentID             *string
	Depth                int
	CreatedAt, UpdatedAt time.Time
}

func (benchLocation) TableName() string { return location.LocationsTable }

type benchPath struct {
	AncestorID, DescendantID string
	Depth                    int
}

func (benchPath) TableName() string { return location.PathsTable }

// bulkLoad inserts the benchmark tree and returns the municipality IDs.
func bulkLoad(b *testing.B, db *gorm.DB) []string {
	b.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var (
		locs   []benchLocation
		ps     []benchPath
		munis  []string
		levels = location.DefaultLevels
	)
	var add func(id string, depth int, ancestors []string)
	add = func(id string, depth int, ancestors []string) {
		l := benchLocation{ID: id, Name: "name " + id, Level: levels[depth], Depth: depth, CreatedAt: now, UpdatedAt: now}
		if len(ancestors) > 0 {
			p := ancestors[len(ancestors)-1]
			l.ParentID = &p
		}
		locs = append(locs, l)
		for k, a := range ancestors {
			ps = append(ps, benchPath{AncestorID: a, DescendantID: id, Depth: len(ancestors) - k})
		}
		ps = append(ps, benchPath{AncestorID: id, DescendantID: id})
		anc := append(ancestors[:len(ancestors):len(ancestors)], id)
		var n int
		switch depth {
		case 0:
			n = benchDistricts
		case 1:
			n = benchMunicipalities
		case 2:
			n = benchVillages
			munis = append(munis, id)
		}
		for i := 0; i < n; i++ {
			add(fmt.Sprintf("%s%c%d", id, "dmv"[depth], i), depth+1, anc)
		}
	}
	for r := 0; r < benchRegions; r++ {
		add(fmt.Sprintf("r%d", r), 0, nil)
	}
	start := time.Now()
	require.NoError(b, db.Transaction(func(tx *gorm.DB) error {
		if err := tx.CreateInBatches(locs, 25).Error; err != nil {
			return err
		}
		return tx.CreateInBatches(ps, 60).Error
	}))
	// Refresh the planner's statistics, as autovacuum (PostgreSQL) or
	// innodb_stats_auto_recalc (MariaDB) would shortly after such a load.
	for _, table := range []string{location.LocationsTable, location.PathsTable} {
		q := "ANALYZE " + table
		if dbx.DialectOf(db) == dbx.MySQL {
			q = "ANALYZE TABLE " + table
		}
		require.NoError(b, db.Exec(q).Error)
	}
	b.Logf("bulk-loaded %d locations and %d closure rows in %v", len(locs), len(ps), time.Since(start).Round(time.Millisecond))
	return munis
}

func BenchmarkTree100k(b *testing.B) {
	ctx := context.Background()
	s, e := newStore(b)
	munis := bulkLoad(b, e.db)
	tr, err := s.LoadTree(ctx)
	require.NoError(b, err)

	b.Run("Create", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			l := location.Location{Name: "new village", Level: "village", ParentID: munis[i%len(munis)]}
			if _, err := s.Create(ctx, l); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MoveDistrict", func(b *testing.B) {
		// r0d0 holds 100 municipalities and 1,000 villages.
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := s.Move(ctx, "r0d0", []string{"r1", "r0"}[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DescendantsOfRegion", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			d, err := s.Descendants(ctx, "r5")
			if err != nil || len(d) < 11010 {
				b.Fatal(len(d), err)
			}
		}
	})
	b.Run("BaselineRecursiveCTEDescendantsOfRegion", func(b *testing.B) {
		// What a parent_id-only schema needs: a recursive query per read.
		q := "WITH RECURSIVE sub(id, d) AS (SELECT id, 0 FROM " + location.LocationsTable +
			" WHERE id = ? AND deleted_at IS NULL UNION ALL SELECT l.id, sub.d + 1 FROM " + location.LocationsTable +
			" l JOIN sub ON l.parent_id = sub.id WHERE l.deleted_at IS NULL)" +
			" SELECT l.id, l.name, l.level, l.parent_id FROM sub JOIN " + location.LocationsTable +
			" l ON l.id = sub.id WHERE sub.d > 0 ORDER BY sub.d, l.id"
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			var rows []location.Location
			if err := e.db.Raw(q, "r5").Scan(&rows).Error; err != nil || len(rows) < 11010 {
				b.Fatal(len(rows), err)
			}
		}
	})
	b.Run("MunicipalitiesOfRegion", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			d, err := s.Descendants(ctx, "r5", location.Municipality)
			if err != nil || len(d) != benchDistricts*benchMunicipalities {
				b.Fatal(len(d), err)
			}
		}
	})
	b.Run("IsWithinSQL", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := s.IsWithin(ctx, "r7d3m42v5", "r7d3"); err != nil {
				b.Fatal(err)
			}
		}
	})

	// In memory. Pairs are spread over the tree, half inside, half not.
	pairs := make([][2]string, 0, 1024)
	for i := 0; i < cap(pairs); i++ {
		v := fmt.Sprintf("r%dd%dm%dv%d", i%benchRegions, i%benchDistricts, i%benchMunicipalities, i%benchVillages)
		pairs = append(pairs, [2]string{v, fmt.Sprintf("r%dd%d", (i+i%2)%benchRegions, i%benchDistricts)})
	}
	b.Run("TreeIsWithin", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			p := pairs[i%len(pairs)]
			if tr.IsWithin(p[0], p[1]) != (i%2 == 0) {
				b.Fatal(p)
			}
		}
	})
	b.Run("TreeIsWithinIndex", func(b *testing.B) {
		idx := make([][2]int32, len(pairs))
		for k, p := range pairs {
			idx[k][0], _ = tr.Index(p[0])
			idx[k][1], _ = tr.Index(p[1])
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p := idx[i%len(idx)]
			if tr.IsWithinIndex(p[0], p[1]) != (i%2 == 0) {
				b.Fatal(p)
			}
		}
	})
	b.Run("BaselineParentWalkIsWithin", func(b *testing.B) {
		// The per-request walk up parent pointers that openIMIS does.
		parent := make(map[string]string, tr.Len())
		for _, l := range tr.Locations() {
			parent[l.ID] = l.ParentID
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			p := pairs[i%len(pairs)]
			in := false
			for x := p[0]; x != ""; x = parent[x] {
				if x == p[1] {
					in = true
					break
				}
			}
			if in != (i%2 == 0) {
				b.Fatal(p)
			}
		}
	})
	// Filters on a frozen copy, as the checker builds them: three regions
	// minus two municipalities.
	frozen := tr.Clone().Freeze()
	roots, carved := []string{"r1", "r2", "r3"}, []string{"r1d0m0", "r2d5m7"}
	b.Run("SubtreesFilter", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if f := location.SubtreesFilter(frozen, roots, carved); f.Empty() {
				b.Fatal("empty filter")
			}
		}
	})
	b.Run("FilterContains", func(b *testing.B) {
		f := location.SubtreesFilter(frozen, roots, carved)
		want := make([]bool, len(pairs))
		for k, p := range pairs {
			anc := frozen.Ancestors(p[0]) // nearest first
			top := anc[len(anc)-1]
			want[k] = slices.Contains(roots, top) && !frozen.IsWithin(p[0], carved[0]) && !frozen.IsWithin(p[0], carved[1])
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			k := i % len(pairs)
			if f.Contains(pairs[k][0]) != want[k] {
				b.Fatal(pairs[k][0])
			}
		}
	})
	b.Run("TreeMoveDistrict", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if err := tr.Move("r2d2", []string{"r3", "r2"}[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("LoadTree", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := s.LoadTree(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
