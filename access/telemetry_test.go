package access_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/benchdata"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// The metrics benchmark platform: 10,000 users (TOWNHALL_BENCH_USERS
// overrides) over 1,000 municipalities,
// opened twice on one SQLite file, once with OpenTelemetry's no-op meter
// provider (nothing counted: the baseline) and once with the SDK's, read
// by a ManualReader.
var metricsBench struct {
	once    sync.Once
	off, on *townhall.Platform
	reader  *sdkmetric.ManualReader
	reqs    []benchReq
	err     error
}

func metricsPlatforms(b *testing.B) {
	metricsBench.once.Do(func() {
		ctx := context.Background()
		dir, err := os.MkdirTemp("", "townhall-metrics-bench-")
		if err != nil {
			metricsBench.err = err
			return
		}
		db, err := dbx.OpenSQLite(filepath.Join(dir, "bench.db"))
		if err != nil {
			metricsBench.err = err
			return
		}
		users := 10000
		if v, err := strconv.Atoi(os.Getenv("TOWNHALL_BENCH_USERS")); err == nil && v > 0 {
			users = v
		}
		spec := benchdata.Spec{Districts: 50, MunicipalitiesPerDistrict: 20, Users: users, ProfilesPerUser: 1, GrantsPerUser: 2}
		open := func(mp metric.MeterProvider) (*townhall.Platform, error) {
			return townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1),
				townhall.WithAuditBuffer(1<<20), townhall.WithAuditDrainInterval(time.Minute), townhall.WithMeterProvider(mp))
		}
		p, err := open(metricnoop.NewMeterProvider())
		if err != nil {
			metricsBench.err = err
			return
		}
		p.Close()
		if metricsBench.err = benchdata.Populate(ctx, db, spec); metricsBench.err != nil {
			return
		}
		if metricsBench.off, metricsBench.err = open(metricnoop.NewMeterProvider()); metricsBench.err != nil {
			return
		}
		metricsBench.reader = sdkmetric.NewManualReader()
		metricsBench.on, metricsBench.err = open(sdkmetric.NewMeterProvider(sdkmetric.WithReader(metricsBench.reader)))
		rng := rand.New(rand.NewPCG(3, 4))
		actions := []string{"view", "create", "update", "assign", "close", "export", "delete"}
		for range 4096 {
			i := rng.IntN(spec.Users)
			muni := spec.UserMunicipality(i, 0)
			if rng.IntN(4) == 0 {
				muni = rng.IntN(spec.Municipalities())
			}
			metricsBench.reqs = append(metricsBench.reqs, benchReq{access.Subject{UserID: benchdata.User(i)},
				access.Request{Municipality: benchdata.Municipality(muni), Module: "occurrences", Action: actions[rng.IntN(len(actions))]}})
		}
	})
	if metricsBench.err != nil {
		b.Fatal(metricsBench.err)
	}
}

// BenchmarkCheckMetrics compares Check with metrics off (the no-op meter
// provider: the baseline) and on (the SDK, every check counted by outcome
// and reason, one in 64 timed into the latency histogram), on one core
// and on all of them. The bound: on is within 10 % of off, with 0
// allocations.
func BenchmarkCheckMetrics(b *testing.B) {
	metricsPlatforms(b)
	ctx := context.Background()
	ranOn := false
	for _, m := range []struct {
		name string
		p    *townhall.Platform
	}{{"off", metricsBench.off}, {"on", metricsBench.on}} {
		reqs := metricsBench.reqs
		c := m.p.Checker
		b.Run("metrics="+m.name, func(b *testing.B) {
			ranOn = ranOn || m.name == "on"
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r := &reqs[i%len(reqs)]
				if _, err := c.Check(ctx, r.subject, r.req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parallel/metrics="+m.name, func(b *testing.B) {
			ranOn = ranOn || m.name == "on"
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(reqs))
				for pb.Next() {
					r := &reqs[i%len(reqs)]
					if _, err := c.Check(ctx, r.subject, r.req); err != nil {
						panic(err)
					}
					i++
				}
			})
		})
	}
	if !ranOn {
		return
	}
	// The counted checks reach the reader.
	var rm metricdata.ResourceMetrics
	if err := metricsBench.reader.Collect(ctx, &rm); err != nil {
		b.Fatal(err)
	}
	var counted int64
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			if s, ok := mt.Data.(metricdata.Sum[int64]); ok && mt.Name == "townhall.checks" {
				for _, p := range s.DataPoints {
					counted += p.Value
				}
			}
		}
	}
	if counted == 0 {
		b.Fatal("metrics on counted no check")
	}
}

// BenchmarkCheckMetricsRatio is BenchmarkCheckMetrics made robust to a
// loaded machine: each iteration runs a block of 512 checks with metrics
// off and the same block with metrics on, alternating which goes first,
// and the benchmark reports the median of the blocks' time ratios (on/off)
// instead of a time per check. Load that drifts between blocks cancels
// out.
func BenchmarkCheckMetricsRatio(b *testing.B) {
	metricsPlatforms(b)
	ctx := context.Background()
	reqs := metricsBench.reqs
	const block = 512
	run := func(c *access.Checker, from int) time.Duration {
		start := time.Now()
		for i := from; i < from+block; i++ {
			r := &reqs[i%len(reqs)]
			if _, err := c.Check(ctx, r.subject, r.req); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	off, on := metricsBench.off.Checker, metricsBench.on.Checker
	var ratios []float64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		from := i * block
		var tOff, tOn time.Duration
		if i%2 == 0 {
			tOff, tOn = run(off, from), run(on, from)
		} else {
			tOn, tOff = run(on, from), run(off, from)
		}
		ratios = append(ratios, float64(tOn)/float64(tOff))
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "on/off")
	b.ReportMetric(0, "ns/op")
}

// TestCheck_MetricsOnAllocateNothing runs allowed checks (not audited, so
// no writer runs meanwhile) with the SDK's meter provider.
func TestCheck_MetricsOnAllocateNothing(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	p := testkit.Open(t, townhall.WithSyncInterval(-1), townhall.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	testkit.Locations(t, p, location.Location{ID: "M1", Level: "municipality"})
	testkit.Member(t, p, "u1", access.RoleAdmin, "M1")
	ctx := context.Background()
	s, req := access.Subject{UserID: "u1"}, access.Request{Municipality: "M1", Module: "occurrences", Action: "delete"}
	d, err := p.Checker.Check(ctx, s, req)
	require.NoError(t, err)
	require.True(t, d.Allowed)
	allocs := testing.AllocsPerRun(10000, func() {
		if _, err := p.Checker.Check(ctx, s, req); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
