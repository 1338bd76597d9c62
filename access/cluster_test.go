package access_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// The cluster tests: a load of grants, revokes and memberships written
// through several platforms on several servers of one cluster, and what
// must hold afterwards. They run where .ci/run started the clusters with
// scripts/cluster (dbtest.Galera, dbtest.PGFailover); elsewhere they skip.

var clusterMunis = []string{"M1", "M2", "M3", "M4"}

// seedClusterTree creates the locations every cluster test works in.
func seedClusterTree(t testing.TB, p *townhall.Platform) {
	t.Helper()
	locs := []location.Location{{ID: "R", Level: "region"}, {ID: "D1", Level: "district", ParentID: "R"}}
	for _, m := range clusterMunis {
		locs = append(locs, location.Location{ID: m, Level: "municipality", ParentID: "D1"})
	}
	testkit.Locations(t, p, locs...)
}

// writer is one platform's share of the load: workers, each owning its
// users, so the state every acknowledged write leaves is known exactly.
type writer struct {
	name    string
	p       *townhall.Platform
	workers int

	mu      sync.Mutex
	manager map[string]bool   // user → holds manager at home(user), as last acknowledged
	viewers map[string]string // acknowledged members (user → municipality), viewer role
	unknown map[string]bool   // users with a write whose outcome is unknown (failed)
	okOps   atomic.Int64
	errOps  atomic.Int64
	errs    []error
}

func newWriter(name string, p *townhall.Platform, workers int) *writer {
	return &writer{name: name, p: p, workers: workers,
		manager: map[string]bool{}, viewers: map[string]string{}, unknown: map[string]bool{}}
}

func (w *writer) user(worker, k int) string { return fmt.Sprintf("%s%d_%d", w.name, worker, k) }

func home(i int) string { return clusterMunis[i%len(clusterMunis)] }

// member creates user id and an approved viewer membership at muni.
func member(ctx context.Context, p *townhall.Platform, id, muni string) error {
	if _, err := p.Users.Create(ctx, users.NewUser{ID: id, Username: id}); err != nil {
		return err
	}
	if _, err := p.Admin.AddMember(ctx, access.System(), access.Membership{UserID: id, LocationID: muni, Role: access.RoleViewer}); err != nil {
		return err
	}
	return p.Admin.Approve(ctx, access.System(), id, muni)
}

// seed gives every worker usersPer members of its own.
func (w *writer) seed(t *testing.T, usersPer int) {
	t.Helper()
	ctx := context.Background()
	for i := range w.workers {
		for k := range usersPer {
			id := w.user(i, k)
			require.NoError(t, member(ctx, w.p, id, home(k)), "seed %s", id)
			w.viewers[id] = home(k)
		}
	}
}

// run makes ops writes per worker, cycling through grant, revoke and a new
// membership, until done or stop is closed. A failed write is counted and
// its user's outcome marked unknown (the commit may or may not have
// happened when the connection died).
func (w *writer) run(ops, usersPer int, stop <-chan struct{}) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range w.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range ops {
				select {
				case <-stop:
					return
				default:
				}
				k := n % usersPer
				id, muni := w.user(i, k), home(k)
				var err error
				switch n % 3 {
				case 0:
					err = w.p.Admin.Grant(ctx, access.System(), id, access.RoleManager, muni)
				case 1:
					err = w.p.Admin.Revoke(ctx, access.System(), id, access.RoleManager, muni)
				default:
					id = fmt.Sprintf("%sm%d_%d", w.name, i, n)
					err = member(ctx, w.p, id, muni)
				}
				if err != nil {
					time.Sleep(10 * time.Millisecond) // the server may be down: do not spin
				}
				w.mu.Lock()
				switch {
				case err != nil:
					w.errOps.Add(1)
					w.unknown[id] = true
					if len(w.errs) < 5 {
						w.errs = append(w.errs, fmt.Errorf("%s op %d on %s: %w", w.name, n, id, err))
					}
				case n%3 == 0:
					w.okOps.Add(1)
					w.manager[id] = true
				case n%3 == 1:
					w.okOps.Add(1)
					w.manager[id] = false
				default:
					w.okOps.Add(1)
					w.viewers[id] = muni
				}
				w.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// grantsIn reads the grant rows of role from db as user → location.
func grantsIn(t *testing.T, db *gorm.DB, role string) map[string]string {
	t.Helper()
	gs, err := policy.AllGrants(context.Background(), db)
	require.NoError(t, err)
	out := map[string]string{}
	for _, g := range gs {
		if g.Role == role {
			out[g.UserID] = g.Domain
		}
	}
	return out
}

// checkAcknowledged asserts that every acknowledged write of w is in db:
// each manager grant or revocation whose user had no failed write, and
// each member.
func (w *writer) checkAcknowledged(t *testing.T, db *gorm.DB) {
	t.Helper()
	managers := grantsIn(t, db, access.RoleManager)
	viewers := grantsIn(t, db, access.RoleViewer)
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, held := range w.manager {
		if w.unknown[id] {
			continue
		}
		_, have := managers[id]
		assert.Equal(t, held, have, "%s: manager grant of %s", w.name, id)
	}
	for id, muni := range w.viewers {
		assert.Equal(t, muni, viewers[id], "%s: membership of %s", w.name, id)
	}
}

// checkAtomic asserts that no write is half-applied: the grant rows in db
// are exactly what replaying the audit log's allowed grant, revoke and
// member_added events gives, so every change is there with its event or
// not at all.
func checkAtomic(t *testing.T, p *townhall.Platform, db *gorm.DB) {
	t.Helper()
	ctx := context.Background()
	replayed := map[string]bool{}
	var after int64
	for {
		events, err := p.Audit.Changes(ctx, after, 1<<62, 1000)
		require.NoError(t, err)
		if len(events) == 0 {
			break
		}
		for _, ev := range events {
			role, _ := ev.Details["role"].(string)
			key := ev.UserID + "|" + role + "|" + ev.LocationID
			if ev.Allowed == nil || !*ev.Allowed {
				continue
			}
			switch ev.Type {
			case audit.TypeGrant, audit.TypeMemberAdded:
				replayed[key] = true
			case audit.TypeRevoke:
				replayed[key] = false
			}
		}
		after = events[len(events)-1].Seq
	}
	var want []string
	for key, held := range replayed {
		if held {
			want = append(want, key)
		}
	}
	gs, err := policy.AllGrants(context.Background(), db)
	require.NoError(t, err)
	var have []string
	for _, g := range gs {
		have = append(have, g.UserID+"|"+g.Role+"|"+g.Domain)
	}
	slices.Sort(want)
	slices.Sort(have)
	assert.Equal(t, want, have, "grant rows = replay of the audit log")
}

// propagation measures, while the load runs, how long a grant or a
// revocation written through from takes to show in the checks of to. It
// runs in a goroutine of its own, so it returns its error.
func propagation(from, to *townhall.Platform, probe string, rounds int) ([]time.Duration, error) {
	ctx := context.Background()
	req := access.Request{Municipality: "M1", Module: "occurrences", Action: "assign"}
	var out []time.Duration
	for i := range rounds {
		want := i%2 == 0
		var err error
		if want {
			err = from.Admin.Grant(ctx, access.System(), probe, access.RoleManager, "M1")
		} else {
			err = from.Admin.Revoke(ctx, access.System(), probe, access.RoleManager, "M1")
		}
		if err != nil {
			return out, fmt.Errorf("probe write %d: %w", i, err)
		}
		start := time.Now()
		for {
			d, err := to.Checker.Check(ctx, access.Subject{UserID: probe}, req)
			if err != nil {
				return out, fmt.Errorf("probe check %d: %w", i, err)
			}
			if d.Allowed == want {
				break
			}
			if time.Since(start) > 30*time.Second {
				return out, fmt.Errorf("probe %d: %s never saw the change", i, probe)
			}
			time.Sleep(2 * time.Millisecond)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// quantile returns the q-quantile (0 < q ≤ 1) of ds, nearest rank.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[max(int(math.Ceil(q*float64(len(s))))-1, 0)]
}

func p50(ds []time.Duration) time.Duration { return quantile(ds, 0.5) }
func p99(ds []time.Duration) time.Duration { return quantile(ds, 0.99) }

// openCluster opens one platform per DSN, all at once, as processes
// starting together would.
func openCluster(t *testing.T, open func(dsn string) *gorm.DB, dsns []string, opts ...townhall.Option) []*townhall.Platform {
	t.Helper()
	ps := make([]*townhall.Platform, len(dsns))
	errs := make([]error, len(dsns))
	var wg sync.WaitGroup
	for i, dsn := range dsns {
		db := open(dsn)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps[i], errs[i] = townhall.Open(context.Background(), db, append([]townhall.Option{townhall.WithKDF(testkit.FastKDF)}, opts...)...)
		}()
	}
	wg.Wait()
	for i := range ps {
		require.NoError(t, errs[i], "open platform %d", i)
		t.Cleanup(func() { ps[i].Close() })
	}
	return ps
}

// loadRun runs every writer at once, with ops writes per worker.
func loadRun(ws []*writer, ops, usersPer int, stop <-chan struct{}) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ops, usersPer, stop) }()
	}
	wg.Wait()
	return time.Since(start)
}

const (
	// A platform's writes to one Galera node are queued (dbx.Tx), so more
	// workers only queue longer.
	clusterWorkers  = 2
	clusterUsersPer = 4
	// clusterOps is per worker: 2 × 252 = 504 writes per platform.
	clusterOps = 252
)

// TestGalera_TwoPlatformsOnTwoNodes opens three platforms on a new database
// through three nodes at once (the migration lease holds cluster-wide),
// then writes at least 500 grants, revokes and memberships through each of
// two platforms on two nodes concurrently. Every write succeeds (conflicts are
// retried), every acknowledged write is in the database as read on the
// third node, the chain verifies, both snapshots equal a fresh load, and a
// change through one node shows in the other platform's checks within 1 s
// (p99).
func TestGalera_TwoPlatformsOnTwoNodes(t *testing.T) {
	dsns := dbtest.Galera(t)
	ctx := context.Background()
	ps := openCluster(t, func(dsn string) *gorm.DB { return dbtest.OpenMySQL(t, dsn) }, dsns[:3])
	a, b, third := ps[0], ps[1], dbtest.OpenMySQL(t, dsns[2])
	events, err := a.Audit.Query(ctx, audit.Query{Type: audit.TypeRegistryChanged})
	require.NoError(t, err)
	assert.Len(t, events, 1, "exactly one process wrote the policy rows")

	seedClusterTree(t, a)
	require.NoError(t, b.Checker.Sync(ctx))
	require.NoError(t, member(ctx, a, "probe_a", "M1"))
	require.NoError(t, member(ctx, b, "probe_b", "M1"))
	wa, wb := newWriter("a", a, clusterWorkers), newWriter("b", b, clusterWorkers)
	wa.seed(t, clusterUsersPer)
	wb.seed(t, clusterUsersPer)
	require.NoError(t, a.Checker.Sync(ctx))
	require.NoError(t, b.Checker.Sync(ctx))

	// The load goes on until the probes are done and each platform has
	// written its share, so every probe runs under load.
	const probes = 100
	stop := make(chan struct{})
	done := make(chan time.Duration)
	go func() { done <- loadRun([]*writer{wa, wb}, 1<<20, clusterUsersPer, stop) }()
	var lat [2][]time.Duration
	var probeErr [2]error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); lat[0], probeErr[0] = propagation(a, b, "probe_a", probes) }()
	go func() { defer wg.Done(); lat[1], probeErr[1] = propagation(b, a, "probe_b", probes) }()
	wg.Wait()
	for wa.okOps.Load()+wa.errOps.Load() < clusterWorkers*clusterOps || wb.okOps.Load()+wb.errOps.Load() < clusterWorkers*clusterOps {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	elapsed := <-done
	require.NoError(t, probeErr[0])
	require.NoError(t, probeErr[1])

	for _, w := range []*writer{wa, wb} {
		assert.Zero(t, w.errOps.Load(), "%s: failed writes: %v", w.name, w.errs)
		assert.GreaterOrEqual(t, w.okOps.Load(), int64(clusterWorkers*clusterOps))
	}
	t.Logf("galera: %d writes through 2 nodes in %v (%.0f/s); propagation over %d probes each way: p50 %v/%v, p99 a→b %v, b→a %v",
		wa.okOps.Load()+wb.okOps.Load(), elapsed.Round(time.Millisecond),
		float64(wa.okOps.Load()+wb.okOps.Load())/elapsed.Seconds(), probes,
		p50(lat[0]).Round(time.Millisecond), p50(lat[1]).Round(time.Millisecond), p99(lat[0]), p99(lat[1]))
	assert.LessOrEqual(t, p99(lat[0]), time.Second, "propagation a→b p99")
	assert.LessOrEqual(t, p99(lat[1]), time.Second, "propagation b→a p99")

	require.NoError(t, a.Audit.Verify(ctx))
	wa.checkAcknowledged(t, third)
	wb.checkAcknowledged(t, third)
	checkAtomic(t, a, third)
	for _, p := range []*townhall.Platform{a, b} {
		require.NoError(t, p.Checker.Sync(ctx))
		require.NoError(t, access.SnapshotDiff(ctx, p.Checker), "the snapshot equals a fresh load")
	}
}

// TestGalera_ANodeKilledMidRun kills one of three nodes with SIGKILL while
// a platform on each writes. Writes through the dead node fail with errors,
// and none is half-applied; the other two carry on without a failure; the
// node rejoins (IST), its platform catches up and writes again.
func TestGalera_ANodeKilledMidRun(t *testing.T) {
	dsns := dbtest.Galera(t)
	ctx := context.Background()
	ps := openCluster(t, func(dsn string) *gorm.DB { return dbtest.OpenMySQL(t, dsn) }, dsns[:3])
	seedClusterTree(t, ps[0])
	ws := make([]*writer, 3)
	for i, p := range ps {
		require.NoError(t, p.Checker.Sync(ctx))
		ws[i] = newWriter(string(rune('a'+i)), p, clusterWorkers)
		ws[i].seed(t, clusterUsersPer)
	}
	t.Cleanup(func() { dbtest.Cluster(t, "galera.sh", "start", "2") }) // whatever happens below

	killed := make(chan struct{})
	go func() {
		for ws[1].okOps.Load() < 50 {
			time.Sleep(5 * time.Millisecond)
		}
		dbtest.Cluster(t, "galera.sh", "kill", "2")
		close(killed)
	}()
	// 100 writes per worker: enough to kill mid-run and keep CI short.
	elapsed := loadRun(ws, 100, clusterUsersPer, nil)
	<-killed
	for _, w := range ws {
		t.Logf("%s: %d acknowledged, %d failed in %v; first errors: %v", w.name, w.okOps.Load(), w.errOps.Load(), elapsed.Round(time.Millisecond), w.errs)
	}
	assert.Positive(t, ws[1].errOps.Load(), "writes through the dead node fail")
	for _, w := range []*writer{ws[0], ws[2]} {
		assert.Zero(t, w.errOps.Load(), "%s: failed writes: %v", w.name, w.errs)
	}

	a, c := ps[0], ps[2]
	db := dbtest.OpenMySQL(t, dsns[0])
	require.NoError(t, a.Audit.Verify(ctx))
	checkAtomic(t, a, db)
	for _, w := range ws {
		w.checkAcknowledged(t, db)
	}
	require.NoError(t, c.Checker.Sync(ctx))
	require.NoError(t, access.SnapshotDiff(ctx, c.Checker))

	dbtest.Cluster(t, "galera.sh", "start", "2")
	b := ps[1]
	require.Eventually(t, func() bool { return b.Checker.Sync(ctx) == nil }, 30*time.Second, 100*time.Millisecond,
		"the platform on the rejoined node syncs again")
	require.NoError(t, access.SnapshotDiff(ctx, b.Checker), "it caught up with what the others wrote")
	require.NoError(t, b.Admin.Grant(ctx, access.System(), ws[1].user(0, 0), access.RoleAdmin, home(0)))
	require.NoError(t, a.Checker.Sync(ctx))
	d, err := a.Checker.Check(ctx, access.Subject{UserID: ws[1].user(0, 0)}, access.Request{Municipality: home(0), Module: "occurrences", Action: "delete"})
	require.NoError(t, err)
	assert.True(t, d.Allowed, "a write through the rejoined node reaches the others")
	require.NoError(t, b.Audit.Verify(ctx))
}

// TestPostgres_FailoverToThePromotedStandby SIGKILLs the primary (postmaster
// and backends) in the middle of a burst of writes and promotes the
// synchronous standby. The platform, opened on the multi-host DSN, resumes
// writing within 10 s of the promotion; every acknowledged write is on the
// promoted server; the chain verifies; and a second platform, woken only
// by LISTEN/NOTIFY (its polling is an hour apart), converges once its
// listener has reconnected to the new primary.
func TestPostgres_FailoverToThePromotedStandby(t *testing.T) {
	dsn := dbtest.PGFailover(t)
	ctx := context.Background()
	t.Cleanup(func() { // a fresh pair for whatever runs next
		dbtest.Cluster(t, "pg.sh", "down")
		dbtest.Cluster(t, "pg.sh", "up")
	})
	open := func(dsn string) *gorm.DB { return dbtest.OpenPostgres(t, dsn) }
	a := openCluster(t, open, []string{dsn})[0]
	b := openCluster(t, open, []string{dsn}, townhall.WithSyncInterval(time.Hour))[0]
	seedClusterTree(t, a)
	w := newWriter("a", a, clusterWorkers)
	w.seed(t, clusterUsersPer)
	require.NoError(t, member(ctx, a, "probe_a", "M1"))
	require.NoError(t, b.Checker.Sync(ctx))

	stop := make(chan struct{})
	done := make(chan time.Duration)
	go func() { done <- loadRun([]*writer{w}, 1<<20, clusterUsersPer, stop) }()
	for w.okOps.Load() < 200 {
		time.Sleep(5 * time.Millisecond)
	}
	killed := time.Now()
	dbtest.Cluster(t, "pg.sh", "kill")
	before := w.okOps.Load() // acknowledged before the kill; none can be until a promotion
	dbtest.Cluster(t, "pg.sh", "promote")
	promoted := time.Now()
	for w.okOps.Load() <= before && time.Since(promoted) < 30*time.Second {
		time.Sleep(time.Millisecond)
	}
	resumed := time.Since(promoted)
	require.Greater(t, w.okOps.Load(), before, "the platform writes again after the promotion")
	assert.LessOrEqual(t, resumed, 10*time.Second, "writes resume within 10 s of the promotion")
	for w.okOps.Load() < before+200 && time.Since(promoted) < 60*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, a.Admin.Grant(ctx, access.System(), "probe_a", access.RoleManager, "M1"))
	close(stop)
	elapsed := <-done
	t.Logf("postgres failover: %d acknowledged, %d failed in %v; writes resumed %v after the promotion (%v after the kill); first errors: %v",
		w.okOps.Load(), w.errOps.Load(), elapsed.Round(time.Millisecond), resumed.Round(time.Millisecond),
		(resumed + promoted.Sub(killed)).Round(time.Millisecond), w.errs)
	assert.Positive(t, w.errOps.Load(), "writes failed while there was no primary")

	db := dbtest.OpenPostgres(t, dsn)
	var recovering bool
	require.NoError(t, db.Raw("SELECT pg_is_in_recovery()").Scan(&recovering).Error)
	require.False(t, recovering, "the pool reaches the promoted server")
	w.checkAcknowledged(t, db)
	checkAtomic(t, a, db)
	require.NoError(t, a.Audit.Verify(ctx))
	require.NoError(t, a.Checker.Sync(ctx))
	require.NoError(t, access.SnapshotDiff(ctx, a.Checker))

	d := access.Request{Municipality: "M1", Module: "occurrences", Action: "assign"}
	require.Eventually(t, func() bool {
		dec, err := b.Checker.Check(ctx, access.Subject{UserID: "probe_a"}, d)
		return err == nil && dec.Allowed
	}, 30*time.Second, 20*time.Millisecond, "the second platform's listener reconnected and caught up")
	lat, err := propagation(a, b, "probe_a", 6)
	require.NoError(t, err)
	t.Logf("postgres: LISTEN/NOTIFY propagation after the failover, p99 %v", p99(lat))
	require.NoError(t, access.SnapshotDiff(ctx, b.Checker))
}
