package access_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"gorm.io/gorm"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
)

// benchmarkGrants measures a guarded write (a grant or a revocation, each
// with its audit event) through the platforms given, round robin, from
// parallel goroutines (-cpu sets how many per GOMAXPROCS).
func benchmarkGrants(b *testing.B, ps []*townhall.Platform) {
	ctx := context.Background()
	seedClusterTree(b, ps[0])
	// One user per goroutine (concurrent grants of one role to one user
	// are not what is measured here).
	goroutines := runtime.GOMAXPROCS(0)
	for _, p := range ps {
		if err := p.Checker.Sync(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for g := range goroutines {
		if err := member(ctx, ps[g%len(ps)], fmt.Sprintf("bench%d", g), "M1"); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1)-1) % goroutines
		p, user := ps[g%len(ps)], fmt.Sprintf("bench%d", g)
		for k := 0; pb.Next(); k++ {
			var err error
			if k%2 == 0 {
				err = p.Admin.Grant(ctx, access.System(), user, access.RoleManager, "M1")
			} else {
				err = p.Admin.Revoke(ctx, access.System(), user, access.RoleManager, "M1")
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func openForBench(b *testing.B, db *gorm.DB) *townhall.Platform {
	p, err := townhall.Open(context.Background(), db, townhall.WithKDF(testkit.FastKDF))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// BenchmarkGrantsOneServer is the baseline: one platform on the single
// server dbtest selects (SQLite, or TOWNHALL_TEST_POSTGRES_DSN /
// TOWNHALL_TEST_MYSQL_DSN).
func BenchmarkGrantsOneServer(b *testing.B) {
	benchmarkGrants(b, []*townhall.Platform{openForBench(b, dbtest.New(b))})
}

// BenchmarkGrantsGaleraOneNode writes through one platform on one node of
// the Galera cluster (replication and certification on every commit).
func BenchmarkGrantsGaleraOneNode(b *testing.B) {
	dsns := dbtest.Galera(b)
	benchmarkGrants(b, []*townhall.Platform{openForBench(b, dbtest.OpenMySQL(b, dsns[0]))})
}

// BenchmarkGrantsGaleraTwoNodes writes through two platforms on two nodes
// at once (conflicts on the audit head, retried).
func BenchmarkGrantsGaleraTwoNodes(b *testing.B) {
	dsns := dbtest.Galera(b)
	benchmarkGrants(b, []*townhall.Platform{
		openForBench(b, dbtest.OpenMySQL(b, dsns[0])), openForBench(b, dbtest.OpenMySQL(b, dsns[1])),
	})
}
