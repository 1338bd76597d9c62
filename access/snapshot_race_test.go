package access_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// TestSnapshot_ChecksDuringWrites runs checks from several goroutines while
// grants, revokes, deactivations, location moves and deletions happen. No
// check may fail or see a half-applied change, and afterwards the snapshot
// equals a fresh load and decides like a platform opened anew. Run it with
// -race.
func TestSnapshot_ChecksDuringWrites(t *testing.T) {
	ctx := context.Background()
	db, dsn := dbtest.NewWithDSN(t)
	// A small decision buffer: denied checks by the thousand would keep the
	// audit writer (and, under -race, SQLite) busy; overflow is counted.
	p, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1), townhall.WithAuditBuffer(64))
	require.NoError(t, err)
	defer p.Close()
	sys := access.System()
	testkit.Locations(t, p,
		location.Location{ID: "R", Level: "region"},
		location.Location{ID: "D1", Level: "district", ParentID: "R"},
		location.Location{ID: "D2", Level: "district", ParentID: "R"},
		location.Location{ID: "M1", Level: "municipality", ParentID: "D1"},
		location.Location{ID: "M2", Level: "municipality", ParentID: "D1"},
		location.Location{ID: "M3", Level: "municipality", ParentID: "D2"},
	)
	users := []string{}
	for i, place := range []string{"D1", "D2", "M1", "M2", "M3", "M1", "M2", "M3"} {
		id := fmt.Sprintf("u%d", i)
		testkit.Member(t, p, id, []string{"manager", "operator", "admin", "viewer"}[i%4], place)
		users = append(users, id)
	}
	munis := []string{"M1", "M2", "M3"}
	reg := access.DefaultRegistry()
	var modules [][2]string
	for _, m := range []string{"occurrences", "equipment"} {
		for _, a := range reg.Actions(m) {
			modules = append(modules, [2]string{m, a})
		}
	}

	var stop atomic.Bool
	var checks atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for !stop.Load() {
				ma := modules[rng.IntN(len(modules))]
				req := access.Request{Municipality: munis[rng.IntN(len(munis))], Module: ma[0], Action: ma[1]}
				if rng.IntN(2) == 0 {
					req = access.Request{Module: ma[0], Action: ma[1], Resource: &access.Resource{LocationID: req.Municipality}}
				}
				if _, err := p.Checker.Check(ctx, access.Subject{UserID: users[rng.IntN(len(users))]}, req); err != nil {
					errs <- err
					return
				}
				if err := access.SnapshotInvariant(p.Checker); err != nil {
					errs <- err
					return
				}
				checks.Add(1)
			}
		}()
	}

	rng := rand.New(rand.NewPCG(42, 42))
	for i := range 25 {
		u := users[rng.IntN(len(users))]
		switch i % 5 {
		case 0:
			testkit.Grant(t, p, u, "manager", munis[rng.IntN(len(munis))])
		case 1:
			require.NoError(t, p.Admin.Revoke(ctx, sys, u, "manager", munis[rng.IntN(len(munis))]))
		case 2:
			require.NoError(t, p.Admin.SetUserActive(ctx, sys, u, i%2 == 0))
		case 3:
			parent := []string{"D1", "D2"}[i%2]
			require.NoError(t, p.Admin.MoveLocation(ctx, sys, "M2", parent))
		case 4:
			v := fmt.Sprintf("V%d", i)
			testkit.Locations(t, p, location.Location{ID: v, Level: "village", ParentID: "M1"})
			testkit.Member(t, p, fmt.Sprintf("w%d", i), "operator", v)
			testkit.Grant(t, p, u, "operator", v)
			require.NoError(t, p.Admin.DeleteLocation(ctx, sys, v))
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Positive(t, checks.Load())

	require.NoError(t, access.SnapshotDiff(ctx, p.Checker), "the snapshot equals a fresh load")
	fresh, err := townhall.Open(ctx, dbtest.Open(t, dsn), townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1))
	require.NoError(t, err)
	defer fresh.Close()
	testkit.SameDecisions(t, p, fresh, reg, users, munis, []string{"R", "D1", "D2", "M1", "M2", "M3"})
}
