package access_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// A replica can read a user's profile and grants before the locations they
// name: another process created them, and the user's refresh came first.
// Those records count for nothing until the tree holds their locations,
// then count as a fresh load would have them, each location arriving on
// its own (the snapshot holds records by tree index and keeps the IDs of
// the others aside until then).
func TestSnapshot_RecordsAtUnknownLocationsCountOnceTheyArrive(t *testing.T) {
	ctx := context.Background()
	e := openAdmin(t, nil)
	testkit.Locations(t, e.p,
		location.Location{ID: "R", Level: "region"},
		location.Location{ID: "D", Level: "district", ParentID: "R"},
	)
	other, err := townhall.Open(ctx, dbtest.Open(t, e.dsn), townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1))
	require.NoError(t, err)
	defer other.Close()
	m1 := location.Location{ID: "M1", Level: location.Municipality, ParentID: "D"}
	v1 := location.Location{ID: "V1", Level: "village", ParentID: "M1"}
	testkit.Locations(t, other, m1, v1)
	testkit.User(t, other, "early")
	_, err = other.Admin.AddMember(ctx, access.System(), access.Membership{
		UserID: "early", LocationID: "M1", Role: access.RoleOperator, AllowedCategories: []string{"roads"},
	})
	require.NoError(t, err)
	require.NoError(t, other.Admin.Approve(ctx, access.System(), "early", "M1"))
	testkit.RawGrant(t, other, "early", access.RoleManager, "V1")

	c := e.p.Checker
	require.NoError(t, c.RefreshUser(ctx, "early"))
	early := access.Subject{UserID: "early"}
	_, err = c.Check(ctx, early, access.Request{Module: "occurrences", Action: "update", Resource: res("M1", "roads")})
	require.ErrorIs(t, err, location.ErrNotFound, "this replica's tree lacks M1")

	require.NoError(t, c.ApplyLocation(location.Change{Kind: location.ChangeCreated, Location: m1}))
	d, err := c.Check(ctx, early, access.Request{Module: "occurrences", Action: "update", Resource: res("M1", "roads")})
	require.NoError(t, err)
	assert.True(t, d.Allowed, "the operator grant at M1 counts: %s", d.Reason)
	assert.Equal(t, "M1", d.Domain)
	d, err = c.Check(ctx, early, access.Request{Module: "occurrences", Action: "update", Resource: res("M1", "water")})
	require.NoError(t, err)
	assert.Equal(t, access.ReasonCategory, d.Reason, "the profile's categories apply")
	d, err = c.Check(ctx, early, access.Request{Municipality: "M1", Module: "occurrences", Action: "assign"})
	require.NoError(t, err)
	assert.False(t, d.Allowed, "the manager grant at V1 waits for V1")

	require.NoError(t, c.ApplyLocation(location.Change{Kind: location.ChangeCreated, Location: v1}))
	d, err = c.Check(ctx, early, access.Request{Municipality: "M1", Module: "occurrences", Action: "assign"})
	require.NoError(t, err)
	assert.True(t, d.Allowed, "the manager grant at V1 counts, anchored at M1: %s", d.Reason)
	assert.Equal(t, []string{access.RoleManager, "V1"}, []string{d.Role, d.Domain})
	ex := c.Explain(ctx, early, access.Request{Municipality: "M1", Module: "occurrences", Action: "assign"})
	var domains []string
	for _, g := range ex.Grants {
		domains = append(domains, g.Domain+"@"+g.Anchor)
	}
	assert.ElementsMatch(t, []string{"M1@M1", "V1@M1"}, domains, "explain names each grant's location and anchor")
	require.NoError(t, access.SnapshotDiff(ctx, c), "the snapshot equals a fresh load")
}
