package access_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	gormadapter "github.com/casbin/gorm-adapter/v3"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/internal/testkit"
)

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// benchmarkRetained reports the heap that what load returns keeps alive,
// per user of the benchmark fixture (bench_test.go's: TOWNHALL_BENCH_USERS
// users, default 100,000, with one profile and two grants each). It is the
// figure docs/SCALING.md scales to 1M and 10M users.
func benchmarkRetained(b *testing.B, load func() (keep any, release func())) {
	benchPlatform(b)
	users := float64(bench.spec.Users)
	b.ReportAllocs()
	var perUser float64
	for b.Loop() {
		before := heapInUse()
		keep, release := load()
		after := heapInUse()
		runtime.KeepAlive(keep)
		release()
		perUser = float64(after-before) / users
	}
	b.ReportMetric(perUser, "B/user")
}

// BenchmarkSnapshotMemory is the memory a process spends on townhall's
// access snapshot: a second platform opened on the fixture.
func BenchmarkSnapshotMemory(b *testing.B) {
	benchmarkRetained(b, func() (any, func()) {
		p, err := townhall.Open(context.Background(), bench.p.DB(), townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1))
		if err != nil {
			b.Fatal(err)
		}
		return p, func() { p.Close() }
	})
}

// BenchmarkSnapshotMemoryCasbin is the baseline: Casbin's SyncedEnforcer
// holding the same casbin_rule rows (read through gorm-adapter).
func BenchmarkSnapshotMemoryCasbin(b *testing.B) {
	benchmarkRetained(b, func() (any, func()) { return newCasbinEnforcer(b), func() {} })
}

// newCasbinEnforcer returns Casbin's SyncedEnforcer over the fixture's
// casbin_rule rows, read through gorm-adapter.
func newCasbinEnforcer(b *testing.B) *casbin.SyncedEnforcer {
	m, err := model.NewModelFromString(casbinFastestModel)
	if err != nil {
		b.Fatal(err)
	}
	db := bench.p.DB()
	gormadapter.TurnOffAutoMigrate(db)
	adapter, err := gormadapter.NewAdapterByDBUseTableName(db, "", "casbin_rule")
	if err != nil {
		b.Fatal(err)
	}
	e, err := casbin.NewSyncedEnforcer(m, adapter)
	if err != nil {
		b.Fatal(err)
	}
	return e
}
