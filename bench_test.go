package townhall_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/internal/benchdata"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
)

// BenchmarkOpen measures townhall.Open on a database holding 100,000 users,
// 200,000 profiles and 1,000,000 grants (1,000 municipalities under 50
// districts), written with bulk SQL. It reports the heap in use once the
// platform is open. Run it on PostgreSQL:
//
//	TOWNHALL_TEST_POSTGRES_DSN='host=127.0.0.1 user=postgres dbname=test sslmode=disable' \
//	  go test -run '^$' -bench Open -benchtime 3x .
//
// TOWNHALL_BENCH_USERS scales the fixture down (profiles and grants follow).
func BenchmarkOpen(b *testing.B) {
	ctx := context.Background()
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("TOWNHALL_BENCH_USERS")); err == nil && v > 0 {
		n = v
	}
	spec := benchdata.Spec{Districts: 50, MunicipalitiesPerDistrict: 20, Users: n, ProfilesPerUser: 2, GrantsPerUser: 10}
	db := dbtest.New(b)
	p, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1))
	if err != nil {
		b.Fatal(err)
	}
	p.Close()
	if err := benchdata.Populate(ctx, db, spec); err != nil {
		b.Fatal(err)
	}
	if dbtest.Name() == "postgres" {
		db.Exec("ANALYZE")
	}
	var heap uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = max(heap, ms.HeapAlloc)
		p.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
}
