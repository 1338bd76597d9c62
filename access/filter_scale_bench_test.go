package access_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/benchdata"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// BenchmarkFilterScale counts the records a national, regional, district,
// municipal and village user may see among 300,000 records spread over
// 10,000 villages (5 regions × 10 districts × 10 municipalities × 20
// villages), through Checker.Filter and through two baselines in the same
// run: openIMIS's way (every descendant ID resolved in Go, then
// location_id IN (...)) and a recursive CTE over the parent column. Run it on
// PostgreSQL:
//
//	TOWNHALL_TEST_POSTGRES_DSN='host=127.0.0.1 user=postgres dbname=test sslmode=disable' \
//	  go test -run '^$' -bench FilterScale -benchtime 20x -v ./access/
//
// On PostgreSQL the townhall and openIMIS cases also run unprepared (the
// simple protocol, as behind a transaction-pooling proxy), where the server
// plans every count for its values. With -v it logs each case's row count
// and the custom and generic plans of townhall's query.
func BenchmarkFilterScale(b *testing.B) {
	ctx := context.Background()
	db, dsn := dbtest.NewWithDSN(b)
	p, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1))
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var locs, paths [][]any
	var villages []string
	addLoc := func(id, level, parent string, anc []string) {
		var par any
		if parent != "" {
			par = parent
		}
		locs = append(locs, []any{id, id, level, par, len(anc), now, now})
		paths = append(paths, []any{id, id, 0})
		for i, a := range anc {
			paths = append(paths, []any{a, id, len(anc) - i})
		}
	}
	for r := range 5 {
		rid := fmt.Sprintf("r%d", r)
		addLoc(rid, "region", "", nil)
		for d := range 10 {
			did := fmt.Sprintf("%s-d%d", rid, d)
			addLoc(did, "district", rid, []string{rid})
			for m := range 10 {
				mid := fmt.Sprintf("%s-m%d", did, m)
				addLoc(mid, "municipality", did, []string{rid, did})
				for v := range 20 {
					vid := fmt.Sprintf("%s-v%d", mid, v)
					addLoc(vid, "village", mid, []string{rid, did, mid})
					villages = append(villages, vid)
				}
			}
		}
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(benchdata.Insert(db, location.LocationsTable, []string{"id", "name", "level", "parent_id", "depth", "created_at", "updated_at"}, locs))
	must(benchdata.Insert(db, location.PathsTable, []string{"ancestor_id", "descendant_id", "depth"}, paths))
	must(db.Exec("CREATE TABLE bench_records (id BIGINT PRIMARY KEY, location_id VARCHAR(64), category VARCHAR(64))").Error)
	rng := rand.New(rand.NewPCG(3, 4))
	var recs [][]any
	for i := range 300000 {
		recs = append(recs, []any{i, villages[rng.IntN(len(villages))], "c" + fmt.Sprint(rng.IntN(3))})
	}
	must(benchdata.Insert(db, "bench_records", []string{"id", "location_id", "category"}, recs))
	must(db.Exec("CREATE INDEX bench_records_location ON bench_records (location_id)").Error)
	if dbtest.Name() == "postgres" {
		must(db.Exec("ANALYZE").Error)
	}
	p.Close()
	p, err = townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1))
	must(err)
	defer p.Close()

	sys := access.System()
	users := []struct {
		name   string
		places []string
	}{
		{"national", []string{"r0", "r1", "r2"}},
		{"regional", []string{"r0"}},
		{"district", []string{"r0-d0"}},
		{"municipal", []string{"r0-d0-m0"}},
		{"village", []string{"r0-d0-m0-v0"}},
	}
	for _, u := range users {
		testkit.User(b, p, u.name)
		for _, place := range u.places {
			_, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: u.name, LocationID: place, Role: "viewer"})
			must(err)
			must(p.Admin.Approve(ctx, sys, u.name, place))
		}
	}
	// On PostgreSQL a second pool sends every statement unprepared (as
	// behind a transaction-pooling proxy), so the server plans each count
	// for its values and never caches a generic plan.
	var simple *gorm.DB
	if dbtest.Name() == "postgres" {
		simple, err = gorm.Open(postgres.New(postgres.Config{DSN: dsn, PreferSimpleProtocol: true}), &gorm.Config{Logger: logger.Discard})
		must(err)
		defer func() {
			if sqlDB, err := simple.DB(); err == nil {
				_ = sqlDB.Close()
			}
		}()
	}
	cols := access.Columns{Location: "location_id", Category: "category"}
	count := func(q *gorm.DB) int64 {
		var n int64
		must(q.Count(&n).Error)
		return n
	}
	for _, u := range users {
		subject := access.Subject{UserID: u.name}
		// A view action that is not public, so the filter is the grants'.
		f, err := p.Checker.Filter(ctx, subject, "equipment", "view")
		must(err)
		want := count(db.Table("bench_records").Scopes(f.Scope(cols)))
		explain(b, db, u.name+"/townhall", db.Table("bench_records").Scopes(f.Scope(cols)))
		townhall := func(b *testing.B, db *gorm.DB) {
			for b.Loop() {
				f, err := p.Checker.Filter(ctx, subject, "equipment", "view")
				must(err)
				if n := count(db.Table("bench_records").Scopes(f.Scope(cols))); n != want {
					b.Fatalf("%d rows, want %d", n, want)
				}
			}
		}
		b.Run(u.name+"/townhall", func(b *testing.B) { townhall(b, db) })
		openIMIS := func(b *testing.B, db *gorm.DB) {
			for b.Loop() {
				var ids []string
				for _, place := range u.places {
					ids = append(ids, place)
					desc, err := p.Locations.Descendants(ctx, place)
					must(err)
					for _, d := range desc {
						ids = append(ids, d.ID)
					}
				}
				if n := count(db.Table("bench_records").Where("location_id IN ?", ids)); n != want {
					b.Fatalf("%d rows, want %d", n, want)
				}
			}
		}
		b.Run(u.name+"/openimis-in-list", func(b *testing.B) { openIMIS(b, db) })
		if simple != nil {
			b.Run(u.name+"/townhall-unprepared", func(b *testing.B) { townhall(b, simple) })
			b.Run(u.name+"/openimis-in-list-unprepared", func(b *testing.B) { openIMIS(b, simple) })
		}
		cte := "WITH RECURSIVE sub(id) AS (SELECT id FROM " + location.LocationsTable + " WHERE id IN ? AND deleted_at IS NULL" +
			" UNION ALL SELECT l.id FROM " + location.LocationsTable + " l JOIN sub ON l.parent_id = sub.id WHERE l.deleted_at IS NULL)" +
			" SELECT count(*) FROM bench_records WHERE location_id IN (SELECT id FROM sub)"
		b.Run(u.name+"/recursive-cte", func(b *testing.B) {
			for b.Loop() {
				var n int64
				must(db.Raw(cte, u.places).Scan(&n).Error)
				if n != want {
					b.Fatalf("%d rows, want %d", n, want)
				}
			}
		})
		b.Logf("%s: %d rows", u.name, want)
	}
}

// explain logs, on PostgreSQL, the plans of q's count: the custom plan the
// server makes for the first executions of a prepared statement, and the
// generic plan it may cache after five (pgx prepares every statement).
func explain(b *testing.B, db *gorm.DB, name string, q *gorm.DB) {
	if dbtest.Name() != "postgres" {
		return
	}
	stmt := q.Session(&gorm.Session{DryRun: true}).Select("count(*)").Find(&[]map[string]any{}).Statement
	var custom, generic []string
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Raw("EXPLAIN "+stmt.SQL.String(), stmt.Vars...).Scan(&custom).Error; err != nil {
			return err
		}
		args := make([]string, len(stmt.Vars))
		for i, v := range stmt.Vars {
			args[i] = "'" + strings.ReplaceAll(fmt.Sprint(v), "'", "''") + "'"
		}
		for _, sql := range []string{
			"PREPARE townhall_bench AS " + stmt.SQL.String(),
			"SET LOCAL plan_cache_mode = force_generic_plan",
		} {
			if err := tx.Exec(sql).Error; err != nil {
				return err
			}
		}
		if err := tx.Raw("EXPLAIN EXECUTE townhall_bench(" + strings.Join(args, ", ") + ")").Scan(&generic).Error; err != nil {
			return err
		}
		return tx.Exec("DEALLOCATE townhall_bench").Error
	})
	if err != nil {
		b.Logf("%s: explain: %v", name, err)
		return
	}
	b.Logf("%s custom plan:\n  %s\n%s generic plan:\n  %s", name, strings.Join(custom, "\n  "), name, strings.Join(generic, "\n  "))
}
