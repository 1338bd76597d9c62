package access_test

import (
	"runtime"
	"testing"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	gormadapter "github.com/casbin/gorm-adapter/v3"
)

// BenchmarkSnapshotMemoryCasbin is the baseline of BenchmarkSnapshotMemory:
// the heap Casbin's SyncedEnforcer holds per user over the same casbin_rule
// rows, measured the same way.
func BenchmarkSnapshotMemoryCasbin(b *testing.B) {
	benchPlatform(b)
	var perUser float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		e := newCasbinEnforcer(b)
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		perUser = float64(after.HeapAlloc-before.HeapAlloc) / float64(bench.spec.Users)
		runtime.KeepAlive(e)
		b.StartTimer()
	}
	b.ReportMetric(perUser, "B/user")
}

// newCasbinEnforcer returns Casbin's SyncedEnforcer over the benchmark
// database's casbin_rule rows, read through gorm-adapter.
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
