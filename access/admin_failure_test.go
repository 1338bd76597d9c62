package access_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

var errInjected = errors.New("injected failure")

// failNthWrite makes the n-th create or update statement on db fail (1 is
// the first) until the returned function removes the hook.
func failNthWrite(t *testing.T, db *gorm.DB, n int64) (remove func()) {
	t.Helper()
	var count atomic.Int64
	fail := func(tx *gorm.DB) {
		if count.Add(1) == n {
			_ = tx.AddError(errInjected)
		}
	}
	name := fmt.Sprintf("test:fail_%d", n)
	require.NoError(t, db.Callback().Create().Before("gorm:create").Register(name, fail))
	require.NoError(t, db.Callback().Update().Before("gorm:update").Register(name, fail))
	return func() {
		_ = db.Callback().Create().Remove(name)
		_ = db.Callback().Update().Remove(name)
	}
}

// TestAddMember_InjectedFailureLeavesNothing fails each write of AddMember
// in turn (profile, grant, audit event, audit head): the call fails, and no
// profile, grant or audit event is left, and the snapshot is unchanged.
func TestAddMember_InjectedFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	p := testkit.Open(t, townhall.WithSyncInterval(-1))
	testkit.Locations(t, p, location.Location{ID: "M1", Level: "municipality"})
	testkit.User(t, p, "olga")
	sys := access.System()
	olga := access.Subject{UserID: "olga"}
	req := access.Request{Municipality: "M1", Module: "occurrences", Action: "update"}
	m := access.Membership{UserID: "olga", LocationID: "M1", Role: "operator"}

	for n := int64(1); ; n++ {
		before, err := p.Audit.Query(ctx, audit.Query{Limit: audit.MaxLimit})
		require.NoError(t, err)
		remove := failNthWrite(t, p.DB(), n)
		_, err = p.Admin.AddMember(ctx, sys, m)
		remove()
		if err == nil {
			require.Greater(t, n, int64(3), "AddMember makes at least profile, grant and audit writes")
			d, err := p.Checker.Check(ctx, olga, req)
			require.NoError(t, err)
			assert.Equal(t, access.ReasonProfileNotApproved, d.Reason, "the write that succeeded is visible")
			return
		}
		require.ErrorIs(t, err, errInjected, "write %d", n)
		_, err = p.Profiles.Get(ctx, "olga", "M1")
		assert.Error(t, err, "no profile after failing write %d", n)
		grants, err := policy.GrantsOf(ctx, p.DB(), "olga")
		require.NoError(t, err)
		assert.Empty(t, grants, "no grant after failing write %d", n)
		after, err := p.Audit.Query(ctx, audit.Query{Limit: audit.MaxLimit})
		require.NoError(t, err)
		assert.Len(t, after, len(before), "no audit event after failing write %d", n)
		d, err := p.Checker.Check(ctx, olga, req)
		require.NoError(t, err)
		assert.Equal(t, access.ReasonNoGrant, d.Reason, "snapshot unchanged after failing write %d", n)
		require.NoError(t, p.Audit.Verify(ctx))
	}
}
