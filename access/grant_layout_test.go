package access_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// A grant records its anchor profile's index in one byte; past 254
// profiles the check finds the anchor again. A user with 260 profiles, each
// restricted to its own category, must see exactly its category in every
// municipality, whichever of its profiles sit past the byte.
func TestCheck_ManyProfilesKeepTheirCategories(t *testing.T) {
	const n = 260
	e := openAdmin(t, nil)
	ctx := context.Background()
	sys := access.System()
	testkit.Locations(t, e.p, location.Location{ID: "D", Level: "district"})
	muni := func(k int) string { return fmt.Sprintf("M%03d", k) }
	cat := func(k int) string { return fmt.Sprintf("c%03d", k) }
	for k := range n {
		testkit.Locations(t, e.p, location.Location{ID: muni(k), Level: location.Municipality, ParentID: "D"})
	}
	testkit.User(t, e.p, "many")
	for k := range n {
		_, err := e.p.Admin.AddMember(ctx, sys, access.Membership{
			UserID: "many", LocationID: muni(k), Role: access.RoleOperator, AllowedCategories: []string{cat(k)},
		})
		require.NoError(t, err)
		require.NoError(t, e.p.Admin.Approve(ctx, sys, "many", muni(k)))
	}
	require.NoError(t, access.SnapshotDiff(ctx, e.p.Checker))
	subject := access.Subject{UserID: "many"}
	for k := range n {
		req := access.Request{Module: "equipment", Action: "update", Resource: res(muni(k), cat(k))}
		d, err := e.p.Checker.Check(ctx, subject, req)
		require.NoError(t, err)
		assert.True(t, d.Allowed, "own category in %s: %s", muni(k), d.Reason)
		assert.Equal(t, muni(k), d.Domain)
		req.Resource = res(muni(k), cat((k+1)%n))
		d, err = e.p.Checker.Check(ctx, subject, req)
		require.NoError(t, err)
		assert.False(t, d.Allowed, "another profile's category in %s", muni(k))
		assert.Equal(t, access.ReasonCategory, d.Reason, muni(k))
	}
}
