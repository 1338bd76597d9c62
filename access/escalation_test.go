package access_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// The paths of issue 13: changes whose operation looks harmless but whose
// result gives a user a permission the actor could not grant. Each test
// shows the refusal (ErrForbidden, nothing written, refusal audited, the
// permission still denied) and, as its control, that a super admin may make
// the same change and the permission then really is gained.

var dbCreate = access.Request{Municipality: "M1", Module: "databases", Action: "create"}

// escalationWorld is governanceWorld plus x, the user whose access the
// paths change.
func escalationWorld(t *testing.T, managersManage bool) *governance {
	t.Helper()
	g := governanceWorld(t, managersManage)
	testkit.User(t, g.p, "x")
	return g
}

// refusedThenAllowed runs change as actor (refused: nothing changes, the
// refusal is audited as typ, and req stays denied for x), then as the super
// admin (applied: req is allowed for x).
func (g *governance) refusedThenAllowed(t *testing.T, actor string, typ string, req access.Request, change func(actor access.Subject) error) {
	t.Helper()
	x := access.Subject{UserID: "x"}
	require.False(t, g.allowed(t, x, req).Allowed, "precondition: x may not yet")
	before, seq := g.fingerprint(t), g.mark(t)
	err := change(g.actors[actor])
	g.assertRefused(t, err, before, seq, typ, actor)
	assert.False(t, g.allowed(t, x, req).Allowed, "the refused change gave nothing")

	require.NoError(t, change(g.actors["super"]), "a super admin may make the change")
	assert.True(t, g.allowed(t, x, req).Allowed, "the change really gives the permission")
}

func TestEscalation_DormantGrantSwitchedOnByAddMemberAfterApprovalOff(t *testing.T) {
	for _, actor := range []string{"madmin", "pat"} {
		t.Run(actor, func(t *testing.T) {
			g := escalationWorld(t, false)
			ctx := context.Background()
			// A grant no profile anchors (written by an import): it counts
			// for nothing.
			testkit.RawGrant(t, g.p, "x", "db_creator", "M1")
			require.NoError(t, g.p.Admin.SetApprovalRequired(ctx, g.actors[actor], "M1", false), "turning approval off is allowed")
			g.refusedThenAllowed(t, actor, audit.TypeMemberAdded, dbCreate, func(a access.Subject) error {
				_, err := g.p.Admin.AddMember(ctx, a, access.Membership{UserID: "x", LocationID: "M1", Role: access.RoleViewer})
				return err
			})
		})
	}
}

func TestEscalation_DormantGrantSwitchedOnByApprove(t *testing.T) {
	g := escalationWorld(t, false)
	ctx := context.Background()
	_, err := g.p.Admin.AddMember(ctx, access.System(), access.Membership{UserID: "x", LocationID: "M1", Role: access.RoleViewer})
	require.NoError(t, err)
	require.NoError(t, g.p.Admin.Grant(ctx, access.System(), "x", "db_creator", "M1"), "anchored by the unapproved profile")
	g.refusedThenAllowed(t, "madmin", audit.TypeApprove, dbCreate, func(a access.Subject) error {
		return g.p.Admin.Approve(ctx, a, "x", "M1")
	})
}

func TestEscalation_DormantGrantSwitchedOnBySetProfileActive(t *testing.T) {
	g := escalationWorld(t, false)
	ctx := context.Background()
	testkit.Member(t, g.p, "x", access.RoleViewer, "M1")
	require.NoError(t, g.p.Admin.SetProfileActive(ctx, access.System(), "x", "M1", false))
	require.NoError(t, g.p.Admin.Grant(ctx, access.System(), "x", "db_creator", "M1"), "inert: its anchor is inactive")
	for _, actor := range []string{"madmin", "pat"} {
		before, seq := g.fingerprint(t), g.mark(t)
		err := g.p.Admin.SetProfileActive(ctx, g.actors[actor], "x", "M1", true)
		g.assertRefused(t, err, before, seq, audit.TypeProfileActive, actor)
	}
	g.refusedThenAllowed(t, "madmin", audit.TypeProfileActive, dbCreate, func(a access.Subject) error {
		return g.p.Admin.SetProfileActive(ctx, a, "x", "M1", true)
	})
}

func TestEscalation_DormantGrantSwitchedOnByADeeperProfile(t *testing.T) {
	g := escalationWorld(t, false)
	ctx := context.Background()
	// x's grant at V1 is anchored by the profile at M1, which is inactive.
	testkit.Member(t, g.p, "x", access.RoleViewer, "M1")
	require.NoError(t, g.p.Admin.Grant(ctx, access.System(), "x", "db_creator", "V1"))
	require.NoError(t, g.p.Admin.SetProfileActive(ctx, access.System(), "x", "M1", false))
	require.NoError(t, g.p.Admin.SetApprovalRequired(ctx, access.System(), "M1", false))
	atV1 := access.Request{Module: "databases", Action: "create", Resource: &access.Resource{LocationID: "V1"}}
	g.refusedThenAllowed(t, "madmin", audit.TypeMemberAdded, atV1, func(a access.Subject) error {
		// A viewer profile at V1: harmless as an operation, but it becomes
		// the anchor of the db_creator grant there.
		_, err := g.p.Admin.AddMember(ctx, a, access.Membership{UserID: "x", LocationID: "V1", Role: access.RoleViewer})
		return err
	})
}

func TestEscalation_DormantGrantSwitchedOnByMoveLocation(t *testing.T) {
	g := escalationWorld(t, false)
	ctx := context.Background()
	testkit.Locations(t, g.p, location.Location{ID: "V2", Level: "village", ParentID: "M2"})
	// x's profile is at M1; its db_creator grant at V2 (under M2) has no
	// anchor until V2 moves under M1.
	testkit.Member(t, g.p, "x", access.RoleViewer, "M1")
	testkit.RawGrant(t, g.p, "x", "db_creator", "V2")
	atV2 := access.Request{Module: "databases", Action: "create", Resource: &access.Resource{LocationID: "V2"}}
	g.refusedThenAllowed(t, "pat", audit.TypeLocationMoved, atV2, func(a access.Subject) error {
		return g.p.Admin.MoveLocation(ctx, a, "V2", "M1")
	})
}

func TestEscalation_MoveLocationGivesTheGrantsAboveTheNewPlace(t *testing.T) {
	g := escalationWorld(t, false)
	ctx := context.Background()
	testkit.Locations(t, g.p, location.Location{ID: "V3", Level: "village", ParentID: "M2"})
	// x holds db_creator over M1; moving V3 under M1 extends it to V3.
	testkit.Member(t, g.p, "x", "db_creator", "M1")
	atV3 := access.Request{Module: "databases", Action: "create", Resource: &access.Resource{LocationID: "V3"}}
	g.refusedThenAllowed(t, "pat", audit.TypeLocationMoved, atV3, func(a access.Subject) error {
		return g.p.Admin.MoveLocation(ctx, a, "V3", "M1")
	})
}

func TestEscalation_ReservedPermissionsThroughInheritance(t *testing.T) {
	_, err := access.LoadRegistry(strings.NewReader(`
roles:
  - {name: db_creator, reserved: true}
  - {name: helper, inherits: [db_creator]}
`))
	require.ErrorIs(t, err, access.ErrInvalidInput)
	assert.Contains(t, err.Error(), "roles[1]")

	// Declared reserved, as it must be, helper is for super admins only.
	reg := governanceRegistry(t, false)
	require.NoError(t, reg.AddRole(access.Role{Name: "helper", Inherits: []string{"db_creator"}, Reserved: true}))
	e := openAdmin(t, reg)
	e.tree(t)
	e.superAdmin(t, "super")
	e.platformAdmin(t, "pat")
	testkit.Member(t, e.p, "x", access.RoleViewer, "M1")
	g := &governance{adminEnv: e, actors: map[string]access.Subject{"super": {UserID: "super"}, "pat": {UserID: "pat"}}}
	g.refusedThenAllowed(t, "pat", audit.TypeGrant, dbCreate, func(a access.Subject) error {
		return e.p.Admin.Grant(context.Background(), a, "x", "helper", "M1")
	})
}

func TestEscalation_CategoriesThroughGrant(t *testing.T) {
	g := escalationWorld(t, false)
	ctx := context.Background()
	// cadmin is admin at M1 for category c1 only; x has an unrestricted
	// profile at the district above.
	testkit.User(t, g.p, "cadmin")
	_, err := g.p.Admin.AddMember(ctx, access.System(), access.Membership{UserID: "cadmin", LocationID: "M1", Role: access.RoleAdmin, AllowedCategories: []string{"c1"}})
	require.NoError(t, err)
	require.NoError(t, g.p.Admin.Approve(ctx, access.System(), "cadmin", "M1"))
	g.actors["cadmin"] = access.Subject{UserID: "cadmin"}
	_, err = g.p.Profiles.Create(ctx, users.Profile{UserID: "x", LocationID: "D", IsApproved: true, IsActive: true})
	require.NoError(t, err)

	c2 := access.Request{Module: "occurrences", Action: "delete", Resource: &access.Resource{LocationID: "M1", Category: "c2"}}
	g.refusedThenAllowed(t, "cadmin", audit.TypeGrant, c2, func(a access.Subject) error {
		return g.p.Admin.Grant(ctx, a, "x", access.RoleAdmin, "M1")
	})

	// Within the actor's categories the same grant is fine.
	testkit.User(t, g.p, "y")
	_, err = g.p.Profiles.Create(ctx, users.Profile{UserID: "y", LocationID: "D", IsApproved: true, IsActive: true, AllowedCategories: []string{"c1"}})
	require.NoError(t, err)
	require.NoError(t, g.p.Admin.Grant(ctx, g.actors["cadmin"], "y", access.RoleAdmin, "M1"))
	c1 := access.Request{Module: "occurrences", Action: "delete", Resource: &access.Resource{LocationID: "M1", Category: "c1"}}
	assert.True(t, g.allowed(t, access.Subject{UserID: "y"}, c1).Allowed)
}

func TestEscalation_AffiliatedPermissionViaLink(t *testing.T) {
	reg := governanceRegistry(t, true)
	require.NoError(t, reg.AddRole(access.Role{Name: "claim_admin", Inherits: []string{access.RoleViewer}}))
	require.NoError(t, reg.AddModule("claims", map[string]access.Action{
		"submit": {Roles: []string{"claim_admin"}, Affiliated: true},
	}))
	e := openAdmin(t, reg)
	e.tree(t)
	e.superAdmin(t, "super")
	ctx := context.Background()
	// mgr holds users:manage at M1 but not claims:submit; x may submit
	// claims at M1 for organisations it is linked to.
	testkit.Member(t, e.p, "mgr", access.RoleManager, "M1")
	testkit.Member(t, e.p, "madmin", access.RoleAdmin, "M1")
	testkit.Member(t, e.p, "x", "claim_admin", "M1")
	_, err := e.p.Affiliations.CreateOrganisation(ctx, affiliation.Organisation{ID: "hf1", Name: "HF1", Kind: "clinic", LocationID: "M1", Services: []string{"claims"}})
	require.NoError(t, err)
	g := &governance{adminEnv: e, actors: map[string]access.Subject{
		"super": {UserID: "super"}, "mgr": {UserID: "mgr"}, "madmin": {UserID: "madmin"},
	}}
	claim := access.Request{Module: "claims", Action: "submit", Resource: &access.Resource{OrganisationID: "hf1"}}
	link := func(a access.Subject) error {
		return e.p.Admin.Link(ctx, a, affiliation.Link{UserID: "x", OrganisationID: "hf1"})
	}
	x := access.Subject{UserID: "x"}
	before, seq := e.fingerprint(t), e.mark(t)
	e.assertRefused(t, link(g.actors["mgr"]), before, seq, audit.TypeLink, "mgr")
	assert.False(t, e.allowed(t, x, claim).Allowed)

	require.NoError(t, link(g.actors["madmin"]), "an admin holding claims:submit at M1 may link")
	assert.True(t, e.allowed(t, x, claim).Allowed)
}
