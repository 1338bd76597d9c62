// Command pgformcpu times PostgreSQL forms of a subtrees filter and the
// sweep's baselines on a kept sweep world (location's
// BenchmarkSweepWorldKept), one query after the other in rounds on one
// connection: per form the wall time and the backend's CPU time (from
// /proc/<pid>/schedstat, so the server must run on this machine; with
// -par 0 no parallel workers, so the CPU time is the whole query's and
// depends little on the machine's load). -explain prints each plan.
//
//	go run ./internal/pgformcpu -schema sw300k -roots one10 -par 0 -rounds 15
//
// The forms: join, hashed, array, indexarray (location.Filter's), exists,
// textarr, and EXTRA_FORMS ("name:condition;;..." with $SUB, $T and
// $ROOTS); the baselines inlist and cte as in BenchmarkFilterSweep.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

func cpuNS(pid uint32) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		panic(err)
	}
	n, _ := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
	return n
}

type q struct {
	name string
	sql  string
	args []any
}

func main() {
	dsn := flag.String("dsn", "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable", "")
	schema := flag.String("schema", "sw300k", "")
	rounds := flag.Int("rounds", 10, "")
	mode := flag.String("mode", "custom", "custom|generic|simple")
	par := flag.Int("par", -1, "max_parallel_workers_per_gather (-1: default)")
	table := flag.String("table", "sweep_records_unindexed", "")
	roots := flag.String("roots", "one10", "comma-separated")
	excl := flag.String("exclude", "", "comma-separated")
	forms := flag.String("forms", "", "comma-separated subset")
	explain := flag.Bool("explain", false, "")
	agg := flag.String("agg", "count(*)", "")
	flag.Parse()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(*dsn + " search_path=" + *schema)
	if err != nil {
		panic(err)
	}
	switch *mode {
	case "custom":
		cfg.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	case "generic":
		cfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	case "simple":
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	if *par >= 0 {
		cfg.RuntimeParams["max_parallel_workers_per_gather"] = strconv.Itoa(*par)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		panic(err)
	}
	pid := conn.PgConn().PID()
	r := strings.Split(*roots, ",")
	var ex []string
	if *excl != "" {
		ex = strings.Split(*excl, ",")
	}
	ph := func(start, n int) string {
		var s []string
		for i := range n {
			s = append(s, "$"+strconv.Itoa(start+i))
		}
		return strings.Join(s, ",")
	}
	var args []any
	for _, x := range r {
		args = append(args, x)
	}
	for _, x := range ex {
		args = append(args, x)
	}
	sub := "SELECT descendant_id FROM townhall_location_paths WHERE ancestor_id IN (" + ph(1, len(r)) + ")"
	if len(ex) > 0 {
		sub += " AND descendant_id NOT IN (SELECT descendant_id FROM townhall_location_paths WHERE ancestor_id IN (" + ph(1+len(r), len(ex)) + "))"
	}
	T := *table
	cnt := "SELECT " + *agg + " FROM " + T + " WHERE "
	qs := []q{
		{"join", cnt + "location_id IN (" + sub + ")", args},
		{"hashed", cnt + "(location_id IN (" + sub + ")) IS TRUE", args},
		{"array", cnt + "((location_id IN (" + sub + ")) IS TRUE AND location_id = ANY(ARRAY(" + sub + ")))", args},
		{"indexarray", cnt + "location_id = ANY(ARRAY(" + sub + "))", args},
		{"exists", cnt + "EXISTS (SELECT 1 FROM townhall_location_paths p WHERE p.descendant_id = " + T + ".location_id AND p.ancestor_id IN (" + ph(1, len(r)) + "))", args[:len(r)]},
		{"textarr", cnt + "location_id::text = ANY(ARRAY(" + strings.Replace(sub, "SELECT descendant_id", "SELECT descendant_id::text", 1) + "))", args},
	}
	// IN list: descendants read first.
	var ids []string
	{
		rows, err := conn.Query(ctx, sub, args...)
		if err != nil {
			panic(err)
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			panic(err)
		}
	}
	var idArgs []any
	for _, id := range ids {
		idArgs = append(idArgs, id)
	}
	qs = append(qs, q{"inlist", cnt + "location_id IN (" + ph(1, len(ids)) + ")", idArgs})
	cte := "WITH RECURSIVE sub(id) AS (SELECT id FROM townhall_locations WHERE id IN (" + ph(1, len(r)) + ") AND deleted_at IS NULL UNION ALL SELECT l.id FROM townhall_locations l JOIN sub ON l.parent_id = sub.id WHERE l.deleted_at IS NULL)"
	if len(ex) > 0 {
		cte += ", gone(id) AS (SELECT id FROM townhall_locations WHERE id IN (" + ph(1+len(r), len(ex)) + ") AND deleted_at IS NULL UNION ALL SELECT l.id FROM townhall_locations l JOIN gone ON l.parent_id = gone.id WHERE l.deleted_at IS NULL)"
	}
	cte += " SELECT " + *agg + " FROM " + T + " WHERE location_id IN (SELECT id FROM sub)"
	if len(ex) > 0 {
		cte += " AND location_id NOT IN (SELECT id FROM gone)"
	}
	qs = append(qs, q{"cte", cte, args})
	if extra := os.Getenv("EXTRA_FORMS"); extra != "" {
		for _, line := range strings.Split(extra, ";;") {
			name, body, _ := strings.Cut(strings.TrimSpace(line), ":")
			body = strings.ReplaceAll(body, "$SUB", sub)
			body = strings.ReplaceAll(body, "$T", T)
			body = strings.ReplaceAll(body, "$ROOTS", ph(1, len(r)))
			a := args
			if !strings.Contains(body, "$"+strconv.Itoa(len(args))) {
				a = args[:len(r)]
			}
			qs = append(qs, q{name, cnt + body, a})
		}
	}
	if *forms != "" {
		keep := strings.Split(*forms, ",")
		qs = slices.DeleteFunc(qs, func(x q) bool { return !slices.Contains(keep, x.name) })
	}
	run := func(x q) (time.Duration, int64, int64) {
		c0 := cpuNS(pid)
		t0 := time.Now()
		var n int64
		if err := conn.QueryRow(ctx, x.sql, x.args...).Scan(&n); err != nil {
			panic(fmt.Sprintf("%s: %v", x.name, err))
		}
		return time.Since(t0), cpuNS(pid) - c0, n
	}
	if *explain {
		for _, x := range qs {
			rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+x.sql, x.args...)
			if err != nil {
				panic(err)
			}
			lines, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			fmt.Printf("== %s\n%s\n", x.name, strings.Join(lines, "\n"))
		}
		return
	}
	walls := make([][]float64, len(qs))
	cpus := make([][]float64, len(qs))
	var want int64 = -1
	for round := -1; round < *rounds; round++ {
		for k := range qs {
			i := (k + max(round, 0)) % len(qs)
			w, c, n := run(qs[i])
			if want < 0 {
				want = n
			} else if n != want {
				panic(fmt.Sprintf("%s: %d rows, want %d", qs[i].name, n, want))
			}
			if round >= 0 {
				walls[i] = append(walls[i], float64(w.Microseconds())/1000)
				cpus[i] = append(cpus[i], float64(c)/1e6)
			}
		}
	}
	fmt.Printf("%s %s roots=%s exclude=%s ids=%d rows=%d\n", *mode, T, *roots, *excl, len(ids), want)
	for i, x := range qs {
		slices.Sort(walls[i])
		slices.Sort(cpus[i])
		fmt.Printf("  %-12s wall min %8.3f med %8.3f  cpu min %8.3f med %8.3f ms\n", x.name, walls[i][0], walls[i][len(walls[i])/2], cpus[i][0], cpus[i][len(cpus[i])/2])
	}
}
