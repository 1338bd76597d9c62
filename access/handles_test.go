package access_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// decideByHandles resolves a gate request to handles and decides it.
func decideByHandles(t *testing.T, c *access.Checker, s access.Subject, req access.Request) (access.Decision, error) {
	t.Helper()
	ctx := context.Background()
	p, err := c.Resolve(ctx, s)
	if err != nil {
		return access.Decision{}, err
	}
	a, err := c.Action(req.Module, req.Action)
	if err != nil {
		return access.Decision{}, err
	}
	at, err := c.Place(req.Municipality)
	if err != nil {
		return access.Decision{}, err
	}
	return c.Decide(p, a, at), nil
}

// handlesOf resolves a subject, an action and a place, which must resolve.
func handlesOf(t *testing.T, c *access.Checker, s access.Subject, module, action, muni string) (access.Principal, access.ActionID, access.Place) {
	t.Helper()
	p, err := c.Resolve(context.Background(), s)
	require.NoError(t, err)
	a, err := c.Action(module, action)
	require.NoError(t, err)
	at, err := c.Place(muni)
	require.NoError(t, err)
	return p, a, at
}

func TestDecide_AgreesWithCheckOnEveryGateRequest(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	subjects := []string{"", "super", "pat", "dm", "admin1", "viewer1", "op", "cat", "dept", "unap", "inact", "noprof", "off", "plain"}
	places := []string{"", "M1", "M2", "M3"}
	reg := access.DefaultRegistry()
	n := 0
	for _, module := range reg.Modules() {
		for _, action := range reg.Actions(module) {
			for _, id := range subjects {
				for _, muni := range places {
					s := access.Subject{UserID: id}
					req := access.Request{Municipality: muni, Module: module, Action: action}
					want, werr := p.Checker.Check(ctx, s, req)
					got, gerr := decideByHandles(t, p.Checker, s, req)
					if werr != nil {
						// What Check refuses, the handles refuse at
						// resolution or Decide denies as invalid.
						if gerr == nil {
							assert.Equal(t, access.Decision{Reason: access.ReasonInvalid}, got, "%s %+v: %v", id, req, werr)
						}
						continue
					}
					require.NoError(t, gerr, "%s %+v", id, req)
					assert.Equal(t, want, got, "%s %+v", id, req)
					n++
				}
			}
		}
	}
	assert.Greater(t, n, 500, "the table covers the fixture")
}

func TestDecide_ZeroOrForeignHandlesDeny(t *testing.T) {
	p := world(t)
	other := world(t)
	ctx := context.Background()
	c := p.Checker
	pr, a, at := handlesOf(t, c, access.Subject{UserID: "admin1"}, "occurrences", "update", "M1")
	require.True(t, c.Decide(pr, a, at).Allowed, "precondition: the handles allow")

	foreign, err := other.Checker.Resolve(ctx, access.Subject{UserID: "admin1"})
	require.NoError(t, err)
	for name, d := range map[string]access.Decision{
		"zero principal":    c.Decide(access.Principal{}, a, at),
		"zero action":       c.Decide(pr, access.ActionID{}, at),
		"zero place":        c.Decide(pr, a, access.Place{}),
		"foreign principal": c.Decide(foreign, a, at),
	} {
		assert.Equal(t, access.Decision{Reason: access.ReasonInvalid}, d, name)
	}
}

func TestDecide_HandlesStayValidAcrossChanges(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	c := p.Checker
	sys := access.System()
	pr, a, at := handlesOf(t, c, access.Subject{UserID: "plain"}, "occurrences", "update", "M3")
	require.False(t, c.Decide(pr, a, at).Allowed, "precondition: no grant yet")

	_, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: "plain", LocationID: "M3", Role: access.RoleOperator})
	require.NoError(t, err)
	require.NoError(t, p.Admin.Approve(ctx, sys, "plain", "M3"))
	assert.Equal(t, access.Decision{Allowed: true, Reason: access.ReasonRole, Role: access.RoleOperator, Domain: "M3"}, c.Decide(pr, a, at))

	// A full reload (a replica far behind) keeps handles valid.
	require.NoError(t, access.Reload(ctx, c))
	assert.True(t, c.Decide(pr, a, at).Allowed, "after a reload")

	require.NoError(t, p.Admin.SetUserActive(ctx, sys, "plain", false))
	assert.Equal(t, access.Decision{Reason: access.ReasonUserInactive}, c.Decide(pr, a, at))
	require.NoError(t, p.Admin.SetUserActive(ctx, sys, "plain", true))
	assert.True(t, c.Decide(pr, a, at).Allowed, "active again")

	require.NoError(t, p.Admin.DeleteUser(ctx, sys, "plain"))
	assert.False(t, c.Decide(pr, a, at).Allowed, "a deleted user's handle denies")
	_, err = c.Resolve(ctx, access.Subject{UserID: "nobody"})
	assert.ErrorIs(t, err, users.ErrNotFound)
}

func TestDecide_PlaceOfADeletedLocationDenies(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	c := p.Checker
	testkit.Locations(t, p, location.Location{ID: "M9", Level: "municipality", ParentID: "D2"})
	pr, a, at := handlesOf(t, c, access.Subject{UserID: "super"}, "occurrences", "update", "M9")
	require.True(t, c.Decide(pr, a, at).Allowed, "precondition: a super admin is allowed")

	require.NoError(t, p.Admin.DeleteLocation(ctx, access.System(), "M9"))
	assert.Equal(t, access.Decision{Reason: access.ReasonInvalid}, c.Decide(pr, a, at))
}

func TestPlace_RefusesWhatCheckRefuses(t *testing.T) {
	p := world(t)
	c := p.Checker
	_, err := c.Place("D")
	assert.ErrorIs(t, err, access.ErrInvalidInput, "a district is not a municipality")
	_, err = c.Place("nowhere")
	assert.ErrorIs(t, err, location.ErrNotFound)
	_, err = c.Place("bad id!")
	assert.ErrorIs(t, err, access.ErrInvalidInput)
	_, err = c.Action("occurrences", "fly")
	assert.ErrorIs(t, err, access.ErrUnknownAction)
	_, err = c.Resolve(context.Background(), access.System())
	assert.ErrorIs(t, err, access.ErrInvalidInput)
	a, err := c.Action("occurrences", "update")
	require.NoError(t, err)
	none, err := c.Place("")
	require.NoError(t, err)
	pr, err := c.Resolve(context.Background(), access.Subject{UserID: "admin1"})
	require.NoError(t, err)
	assert.Equal(t, access.Decision{Reason: access.ReasonInvalid}, c.Decide(pr, a, none),
		"a municipality module needs a municipality")
}

func TestDecide_ImpersonationEndsWithItsSession(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	c := p.Checker
	token, err := p.Admin.Impersonate(ctx, access.Subject{UserID: "super"}, "admin1", "support ticket 1", time.Hour)
	require.NoError(t, err)
	s := access.Subject{UserID: "admin1", ImpersonatorID: "super"}
	pr, a, at := handlesOf(t, c, s, "occurrences", "update", "M1")
	assert.Equal(t, access.Decision{Allowed: true, Reason: access.ReasonRole, Role: access.RoleAdmin, Domain: "M1"}, c.Decide(pr, a, at),
		"the admin acts with the target's grants")

	require.NoError(t, p.Admin.StopImpersonation(ctx, token))
	assert.Equal(t, access.Decision{Reason: access.ReasonInvalid}, c.Decide(pr, a, at), "the session ended")
	_, err = c.Resolve(ctx, s)
	assert.ErrorIs(t, err, access.ErrInvalidToken)
}

func TestDecide_DoesNotAllocate(t *testing.T) {
	p := world(t)
	c := p.Checker
	pr, a, at := handlesOf(t, c, access.Subject{UserID: "viewer1"}, "occurrences", "update", "M3")
	require.False(t, c.Decide(pr, a, at).Allowed, "precondition: a denial, which is audited")
	assert.Zero(t, testing.AllocsPerRun(100, func() { c.Decide(pr, a, at) }))
}

func TestDecide_FollowsAMoveThatChangesAGrantsAnchor(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	c := p.Checker
	gate := func(muni string) access.Request {
		return access.Request{Municipality: muni, Module: "equipment", Action: "update"}
	}
	d, err := c.Check(ctx, access.Subject{UserID: "op"}, gate("M1"))
	require.NoError(t, err)
	require.True(t, d.Allowed, "precondition: op's grant at V1 is anchored by its profile at M1")

	// V1 moves under M3, where op has no profile: the grant loses its
	// anchor and counts for nothing.
	require.NoError(t, p.Admin.MoveLocation(ctx, access.System(), "V1", "M3"))
	for _, muni := range []string{"M1", "M3"} {
		got, err := decideByHandles(t, c, access.Subject{UserID: "op"}, gate(muni))
		require.NoError(t, err)
		assert.Equal(t, access.Decision{Reason: access.ReasonNoGrant}, got, muni)
		want, err := c.Check(ctx, access.Subject{UserID: "op"}, gate(muni))
		require.NoError(t, err)
		assert.Equal(t, want, got, muni)
	}
	require.NoError(t, access.SnapshotDiff(ctx, c), "the snapshot equals a fresh load")

	require.NoError(t, p.Admin.MoveLocation(ctx, access.System(), "V1", "M1"))
	got, err := decideByHandles(t, c, access.Subject{UserID: "op"}, gate("M1"))
	require.NoError(t, err)
	assert.True(t, got.Allowed, "moved back, anchored again")
	require.NoError(t, access.SnapshotDiff(ctx, c))
}

// A full reload loads the tree in its own order (by depth, then ID), so a
// location may get another tree index than the one it had when a Place was
// made: the Place still names its location, never the one now at its old
// index.
func TestDecide_PlaceNamesItsLocationAfterAReloadRenumbersTheTree(t *testing.T) {
	p := world(t)
	ctx := context.Background()
	c := p.Checker
	sys := access.System()
	pr, a, at := handlesOf(t, c, access.Subject{UserID: "admin1"}, "occurrences", "update", "M1")
	require.True(t, c.Decide(pr, a, at).Allowed, "precondition: admin1 is admin at M1")

	// M0 is created last, so it is indexed last; a reload puts it before M1.
	testkit.Locations(t, p, location.Location{ID: "M0", Level: "municipality", ParentID: "D"})
	testkit.Member(t, p, "zero", access.RoleAdmin, "M0")
	zero, err := c.Resolve(ctx, access.Subject{UserID: "zero"})
	require.NoError(t, err)
	require.False(t, c.Decide(zero, a, at).Allowed, "precondition: zero holds nothing at M1")

	require.NoError(t, access.Reload(ctx, c))
	assert.Equal(t, access.Decision{Allowed: true, Reason: access.ReasonRole, Role: access.RoleAdmin, Domain: "M1"}, c.Decide(pr, a, at), "admin1 at M1 after the reload")
	assert.False(t, c.Decide(zero, a, at).Allowed, "zero's grant at M0 does not count at M1")
	m0, err := c.Place("M0")
	require.NoError(t, err)
	assert.True(t, c.Decide(zero, a, m0).Allowed, "a Place made after the reload")

	require.NoError(t, p.Admin.DeleteLocation(ctx, sys, "M0"))
	require.NoError(t, access.Reload(ctx, c))
	assert.Equal(t, access.Decision{Reason: access.ReasonInvalid}, c.Decide(zero, a, m0), "a deleted location's Place denies after a reload")
	assert.True(t, c.Decide(pr, a, at).Allowed, "admin1 at M1 after the second reload")
}
