package location_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	gmysql "gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/benchdata"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/location"
)

// sweepSizes are the subtree sizes of BenchmarkFilterSweep: the locations
// in the roots' subtrees, carve-outs included.
var sweepSizes = []int{1, 10, 100, 250, 260, 300, 1000, 3000, 10000, 50000}

// sweepRoots is the number of roots of the "several" cases.
const sweepRoots = 5

// BenchmarkFilterSweep counts the records of a host table that lie in
// subtrees of every size in sweepSizes, with one root and with five, with
// and without a carve-out (a tenth of the subtrees), through
// location.Filter and, in the same run, through two baselines: openIMIS's
// way (every descendant ID read from the database first, then
// "location_id IN (?, ...)") and a recursive CTE over the parent column.
// The tree holds 129,852 locations (a region per size and per kind, shaped
// region > district > municipality > village); the records, 300,000 by
// default (TOWNHALL_BENCH_SWEEP_RECORDS=3000000 for the heavy run), lie at
// random locations.
//
// Every case runs on a host table with an index on location_id
// ("indexed") and on a copy without ("unindexed"). On PostgreSQL it runs
// through three pools: prepared statements planned for their values
// (plan_cache_mode=force_custom_plan), prepared with one generic plan
// (force_generic_plan, which pgx gets by default after five executions of
// a statement) and the simple protocol. Each case runs its three methods
// in turn for -benchtime rounds (sweepRun) and reports each method's
// minimum and median in ms; ns/op is a round of all three. The tool in
// ../internal/sweepplot renders the output as a table and a PNG:
//
//	TOWNHALL_TEST_POSTGRES_DSN='host=127.0.0.1 user=postgres dbname=test sslmode=disable' \
//	  nice -n 10 go test -run '^$' -bench FilterSweep -benchtime 5x -timeout 2h ./location/ | tee sweep-postgres.txt
func BenchmarkFilterSweep(b *testing.B) {
	ctx := context.Background()
	db, dsn := dbtest.NewWithDSN(b)
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	must(location.Migrate(db))
	records := 300_000
	if s := os.Getenv("TOWNHALL_BENCH_SWEEP_RECORDS"); s != "" {
		n, err := strconv.Atoi(s)
		must(err)
		records = n
	}
	w := buildSweepWorld(b, db, records)
	tree, err := location.LoadTree(ctx, db)
	must(err)

	pools := []struct {
		name string
		db   *gorm.DB
	}{{dbtest.Name(), db}}
	if dbtest.Name() == "mysql" {
		// MariaDB's max_statement_time (s) as PostgreSQL's statement_timeout.
		pool, err := gorm.Open(gmysql.Open(dsn+"&max_statement_time=10"), &gorm.Config{Logger: logger.Discard})
		must(err)
		b.Cleanup(func() {
			if sqlDB, err := pool.DB(); err == nil {
				_ = sqlDB.Close()
			}
		})
		_, err = location.NewStore(pool, audit.New(pool))
		must(err)
		pools[0].db = pool
	}
	if dbtest.Name() == "postgres" {
		pools = nil
		for _, p := range []struct {
			name, params string
			simple       bool
		}{
			{"postgres-custom", " plan_cache_mode=force_custom_plan", false},
			{"postgres-generic", " plan_cache_mode=force_generic_plan", false},
			{"postgres-simple", "", true},
		} {
			pool, err := gorm.Open(postgres.New(postgres.Config{DSN: dsn + p.params + sweepTimeoutParam, PreferSimpleProtocol: p.simple}), &gorm.Config{Logger: logger.Discard})
			must(err)
			// As Open does for the platform's pool: the store registers the
			// cache of host index facts.
			_, err = location.NewStore(pool, audit.New(pool))
			must(err)
			b.Cleanup(func() {
				if sqlDB, err := pool.DB(); err == nil {
					_ = sqlDB.Close()
				}
			})
			pools = append(pools, struct {
				name string
				db   *gorm.DB
			}{p.name, pool})
		}
	}
	for _, pool := range pools {
		for _, table := range []string{"sweep_records", "sweep_records_unindexed"} {
			index := "indexed"
			if strings.HasSuffix(table, "unindexed") {
				index = "unindexed"
			}
			for _, c := range w.cases {
				want := w.count(c)
				methods := []sweepMethod{
					{"townhall", func() (int64, error) {
						f := location.SubtreesFilter(tree, c.roots, c.exclude)
						var n int64
						return n, pool.db.Table(table).Scopes(f.Scope("location_id")).Count(&n).Error
					}},
					{"openimis-in-list", func() (int64, error) {
						ids, err := sweepDescendants(ctx, pool.db, c.roots, c.exclude)
						if err != nil {
							return 0, err
						}
						var n int64
						return n, sweepInList(pool.db.Table(table), ids).Count(&n).Error
					}},
					{"recursive-cte", func() (int64, error) {
						var n int64
						return n, pool.db.Raw(sweepCTE(table, len(c.exclude) > 0), sweepCTEArgs(c)...).Scan(&n).Error
					}},
				}
				b.Run(fmt.Sprintf("%s/%s/%s/%s/%d", pool.name, index, c.kind, c.carve, c.size), func(b *testing.B) {
					sweepRun(b, want, methods)
				})
			}
		}
	}
}

// sweepMethod is one way of counting a case's records.
type sweepMethod struct {
	name  string
	count func() (int64, error)
}

// sweepTimeoutParam makes PostgreSQL cancel a query of the sweep after 10 s
// (SQLSTATE 57014; MariaDB: max_statement_time, error 1969); the point then
// counts as sweepSlow at least.
const sweepTimeoutParam = " statement_timeout=10000"

// sweepSlow is the time from which a query of BenchmarkFilterSweep runs
// only once: the point is then the time of that one run.
const sweepSlow = 2 * time.Second

// sweepRounds is the most rounds sweepRun runs beyond -benchtime.
const sweepRounds = 40

// sweepRun runs the methods in rounds, each round every method once in
// turn (a first round warms plans and caches and is not counted), so that
// the load of a shared machine falls on all of them alike. A method slower
// than sweepSlow in the warm-up runs no more: its time is the warm-up's.
// It reports per method the minimum and the median of its rounds in ms;
// every run must count want rows.
func sweepRun(b *testing.B, want int64, methods []sweepMethod) {
	b.ReportAllocs()
	times := make([][]float64, len(methods))
	run := func(i int) float64 {
		start := time.Now()
		n, err := methods[i].count()
		ms := float64(time.Since(start).Microseconds()) / 1000
		var (
			pgErr *pgconn.PgError
			myErr *mysql.MySQLError
		)
		if errors.As(err, &pgErr) && pgErr.Code == "57014" || errors.As(err, &myErr) && myErr.Number == 1969 {
			b.Logf("%s: canceled after %.0f ms", methods[i].name, ms)
			return max(ms, float64(sweepSlow.Milliseconds()))
		}
		if err != nil {
			b.Fatalf("%s: %v", methods[i].name, err)
		}
		if n != want {
			b.Fatalf("%s: %d rows, want %d", methods[i].name, n, want)
		}
		return ms
	}
	slow := make([]bool, len(methods))
	for i := range methods {
		if ms := run(i); ms >= float64(sweepSlow.Milliseconds()) {
			slow[i] = true
			times[i] = []float64{ms}
		}
	}
	// At least b.N rounds; fast cases get more, up to sweepRounds or a
	// second, for a steadier minimum on a loaded machine.
	start := time.Now()
	for round := 0; round < b.N || round < sweepRounds && time.Since(start) < time.Second; round++ {
		for k := range methods {
			i := (round + k) % len(methods)
			if !slow[i] {
				times[i] = append(times[i], run(i))
			}
		}
	}
	for i, m := range methods {
		slices.Sort(times[i])
		b.ReportMetric(times[i][0], m.name+"-min-ms")
		b.ReportMetric(times[i][len(times[i])/2], m.name+"-med-ms")
	}
}

// sweepInList is openIMIS's condition: the IDs as a list of bound values.
// SQLite binds at most 32,766 values in one statement; beyond that the IDs
// go as one JSON array, as a host would have to.
func sweepInList(q *gorm.DB, ids []string) *gorm.DB {
	if len(ids) <= 30_000 || dbtest.Name() != "sqlite" {
		return q.Where("location_id IN ?", ids)
	}
	list, _ := json.Marshal(ids)
	return q.Where("location_id IN (SELECT value FROM json_each(?))", string(list))
}

// sweepDescendants reads the IDs in the subtrees of roots minus those of
// exclude from the database, as openIMIS does before its query.
func sweepDescendants(ctx context.Context, db *gorm.DB, roots, exclude []string) ([]string, error) {
	read := func(ids []string) ([]string, error) {
		var out []string
		err := db.WithContext(ctx).Raw("SELECT descendant_id FROM "+location.PathsTable+" WHERE ancestor_id IN ?", ids).Scan(&out).Error
		return out, err
	}
	in, err := read(roots)
	if err != nil || len(exclude) == 0 {
		return in, err
	}
	out, err := read(exclude)
	if err != nil {
		return nil, err
	}
	gone := make(map[string]bool, len(out))
	for _, id := range out {
		gone[id] = true
	}
	return slices.DeleteFunc(in, func(id string) bool { return gone[id] }), nil
}

// sweepCTE is the recursive-CTE baseline over the parent column, with a
// second CTE for the carve-outs.
func sweepCTE(table string, carve bool) string {
	sub := func(name string) string {
		return name + "(id) AS (SELECT id FROM " + location.LocationsTable + " WHERE id IN ? AND deleted_at IS NULL" +
			" UNION ALL SELECT l.id FROM " + location.LocationsTable + " l JOIN " + name + " ON l.parent_id = " + name + ".id WHERE l.deleted_at IS NULL)"
	}
	q := "WITH RECURSIVE " + sub("sub")
	if carve {
		q += ", " + sub("gone")
	}
	q += " SELECT count(*) FROM " + table + " WHERE location_id IN (SELECT id FROM sub)"
	if carve {
		q += " AND location_id NOT IN (SELECT id FROM gone)"
	}
	return q
}

func sweepCTEArgs(c sweepCase) []any {
	if len(c.exclude) > 0 {
		return []any{c.roots, c.exclude}
	}
	return []any{c.roots}
}

// sweepCase is one point of the sweep.
type sweepCase struct {
	kind, carve  string // "one"/"several" roots, "whole"/"carved"
	size         int    // locations in the roots' subtrees
	roots        []string
	exclude      []string
	selectedLocs []string
}

type sweepWorld struct {
	cases []sweepCase
	at    map[string]int64 // records per location
}

// count is the number of records the case selects, from the generated data.
func (w *sweepWorld) count(c sweepCase) int64 {
	var n int64
	for _, id := range c.selectedLocs {
		n += w.at[id]
	}
	return n
}

// buildSweepWorld bulk-inserts the sweep tree (for each size and kind a
// region whose subtree, or whose five districts' subtrees, hold exactly
// that many locations), the records table with and without an index, and
// returns the cases.
func buildSweepWorld(b *testing.B, db *gorm.DB, records int) *sweepWorld {
	b.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var locs, paths [][]any
	var all []string
	children := map[string][]string{}
	sizes := map[string]int{}
	// fanout caps the children of a node by level below the region: a
	// district has municipalities of at most 31 locations, a municipality
	// 30 villages.
	capOf := []int{0, 621, 31, 1}
	var add func(id string, depth int, size int, anc []string)
	add = func(id string, depth int, size int, anc []string) {
		var parent any
		if len(anc) > 0 {
			parent = anc[len(anc)-1]
			children[anc[len(anc)-1]] = append(children[anc[len(anc)-1]], id)
		}
		locs = append(locs, []any{id, id, location.DefaultLevels[depth], parent, depth, now, now})
		paths = append(paths, []any{id, id, 0})
		for i, a := range anc {
			paths = append(paths, []any{a, id, len(anc) - i})
		}
		all = append(all, id)
		sizes[id] = size
		rest := size - 1
		if rest == 0 {
			return
		}
		sub := append(slices.Clone(anc), id)
		per := capOf[min(depth+1, 3)]
		k := (rest + per - 1) / per
		for i := range k {
			share := rest / k
			if i < rest%k {
				share++
			}
			add(fmt.Sprintf("%s.%d", id, i), depth+1, share, sub)
		}
	}
	w := &sweepWorld{at: map[string]int64{}}
	subtree := func(id string) []string {
		out := []string{id}
		for i := 0; i < len(out); i++ {
			out = append(out, children[out[i]]...)
		}
		return out
	}
	for _, size := range sweepSizes {
		one := fmt.Sprintf("one%d", size)
		add(one, 0, size, nil)
		w.addCases("one", size, []string{one}, subtree, sizes)
		if size < sweepRoots {
			continue
		}
		// Five districts of one region, their subtrees summing to size.
		several := fmt.Sprintf("several%d", size)
		add(several, 0, 1, nil)
		var roots []string
		for i := range sweepRoots {
			share := size / sweepRoots
			if i < size%sweepRoots {
				share++
			}
			id := fmt.Sprintf("%s.%d", several, i)
			add(id, 1, share, []string{several})
			roots = append(roots, id)
		}
		w.addCases("several", size, roots, subtree, sizes)
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	// One transaction: SQLite would otherwise sync every batch.
	must(db.Transaction(func(tx *gorm.DB) error {
		if err := benchdata.Insert(tx, location.LocationsTable, []string{"id", "name", "level", "parent_id", "depth", "created_at", "updated_at"}, locs); err != nil {
			return err
		}
		return benchdata.Insert(tx, location.PathsTable, []string{"ancestor_id", "descendant_id", "depth"}, paths)
	}))
	rng := rand.New(rand.NewPCG(15, 15))
	var recs [][]any
	for i := range records {
		id := all[rng.IntN(len(all))]
		w.at[id]++
		recs = append(recs, []any{i, id})
	}
	for _, table := range []string{"sweep_records", "sweep_records_unindexed"} {
		must(db.Exec("CREATE TABLE " + table + " (id BIGINT PRIMARY KEY, location_id VARCHAR(64))").Error)
		must(db.Transaction(func(tx *gorm.DB) error { return benchdata.Insert(tx, table, []string{"id", "location_id"}, recs) }))
	}
	must(db.Exec("CREATE INDEX sweep_records_location ON sweep_records (location_id)").Error)
	switch dbtest.Name() {
	case "postgres":
		must(db.Exec("VACUUM ANALYZE").Error)
	case "mysql":
		must(db.Exec("ANALYZE TABLE sweep_records, sweep_records_unindexed, " + location.LocationsTable + ", " + location.PathsTable).Error)
	default:
		must(db.Exec("ANALYZE").Error)
	}
	b.Logf("sweep: %d locations, %d closure rows, %d records", len(locs), len(paths), records)
	return w
}

// addCases adds the whole and the carved case of roots. The carve-out is
// the subtree of the first root's last child (or of its last grandchild
// when that child is too large), about a tenth of the subtrees.
func (w *sweepWorld) addCases(kind string, size int, roots []string, subtree func(string) []string, sizes map[string]int) {
	var sel []string
	for _, r := range roots {
		sel = append(sel, subtree(r)...)
	}
	if len(sel) != size {
		panic(fmt.Sprintf("sweep: %s %d holds %d locations", kind, size, len(sel)))
	}
	w.cases = append(w.cases, sweepCase{kind: kind, carve: "whole", size: size, roots: roots, selectedLocs: sel})
	if size < 10 {
		return
	}
	// The largest subtree below the roots of at most a tenth of size.
	var ex string
	best := 0
	for _, id := range sel {
		if slices.Contains(roots, id) {
			continue
		}
		if n := sizes[id]; n <= size/10 && n > best {
			ex, best = id, n
		}
	}
	gone := map[string]bool{}
	for _, id := range subtree(ex) {
		gone[id] = true
	}
	kept := slices.DeleteFunc(slices.Clone(sel), func(id string) bool { return gone[id] })
	w.cases = append(w.cases, sweepCase{kind: kind, carve: "carved", size: size, roots: roots, exclude: []string{ex}, selectedLocs: kept})
}
