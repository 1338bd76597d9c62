package townhall_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// TestGrant_ConcurrentIdenticalGrantsAreIdempotent has two platforms (two
// connection pools, as two processes) grant the same role to the same user
// at the same place at the same moment, many times over. Both calls must
// succeed (no duplicate-key error), exactly one grant row must exist, each
// platform's own snapshot must show the grant when its call returns (no
// Sync: both platforms only move on their own writes), and the audit log
// must hold both grants, exactly one of them saying it changed nothing.
func TestGrant_ConcurrentIdenticalGrantsAreIdempotent(t *testing.T) {
	ctx := context.Background()
	manual := []townhall.Option{townhall.WithSyncInterval(-1)}
	a, b, _ := replicaPair(t, manual, manual)
	testkit.Locations(t, a, location.Location{ID: "M1", Level: "municipality"})

	sys := access.System()
	req := access.Request{Municipality: "M1", Module: "occurrences", Action: "delete"} // admin may, viewer may not
	const rounds = 12
	for r := range rounds {
		id := fmt.Sprintf("u%02d", r)
		testkit.Member(t, a, id, access.RoleViewer, "M1")
		require.NoError(t, b.Checker.Sync(ctx))
		for _, p := range []*townhall.Platform{a, b} {
			d, err := p.Checker.Check(ctx, access.Subject{UserID: id}, req)
			require.NoError(t, err)
			require.False(t, d.Allowed, "round %d: %s must not be allowed before the grant", r, id)
		}

		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, p := range []*townhall.Platform{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = p.Admin.Grant(ctx, sys, id, access.RoleAdmin, "M1")
			}()
		}
		close(start)
		wg.Wait()
		require.NoError(t, errs[0], "round %d: platform a", r)
		require.NoError(t, errs[1], "round %d: platform b", r)

		grants, err := policy.GrantsOf(ctx, a.DB(), id)
		require.NoError(t, err)
		var admins int
		for _, g := range grants {
			if g.Role == access.RoleAdmin && g.Domain == "M1" {
				admins++
			}
		}
		require.Equal(t, 1, admins, "round %d: rows of the grant", r)

		for name, p := range map[string]*townhall.Platform{"a": a, "b": b} {
			d, err := p.Checker.Check(ctx, access.Subject{UserID: id}, req)
			require.NoError(t, err)
			assert.True(t, d.Allowed, "round %d: platform %s's own snapshot after its Grant returned", r, name)
		}

		events, err := a.Audit.Query(ctx, audit.Query{UserID: id, Type: audit.TypeGrant})
		require.NoError(t, err)
		require.Len(t, events, 2, "round %d: both grants are audited", r)
		var unchanged int
		for _, e := range events {
			require.NotNil(t, e.Allowed)
			assert.True(t, *e.Allowed)
			assert.Equal(t, "M1", e.LocationID)
			assert.Equal(t, access.RoleAdmin, e.Details["role"])
			if e.Details["unchanged"] == true {
				unchanged++
			}
		}
		assert.Equal(t, 1, unchanged, "round %d: exactly one grant says it changed nothing", r)
	}
}
