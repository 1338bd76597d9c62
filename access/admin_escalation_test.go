package access_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/users"
)

// governance is the fixture of the governance tests: the tree of
// adminEnv.tree and one actor of each kind, plus tgt, whose access the
// actors change.
type governance struct {
	*adminEnv
	actors map[string]access.Subject
}

// governanceWorld builds the fixture on governanceRegistry(managersManage):
//
//	super, super2  super admins
//	pat            platform_admin
//	madmin         admin at M1
//	mgr            manager at M1 (users:manage only with managersManage)
//	op             operator at M1
//	bot            technical user, admin at M1
//	off            admin at M1, user deactivated
//	imp            madmin impersonated by super
//	tgt            approved profiles at M1 and M2, no grant
func governanceWorld(t *testing.T, managersManage bool) *governance {
	t.Helper()
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, governanceRegistry(t, managersManage))
	e.tree(t)
	e.superAdmin(t, "super")
	e.superAdmin(t, "super2")
	e.platformAdmin(t, "pat")
	testkit.Member(t, e.p, "madmin", access.RoleAdmin, "M1")
	testkit.Member(t, e.p, "mgr", access.RoleManager, "M1")
	testkit.Member(t, e.p, "op", access.RoleOperator, "M1")
	e.technical(t, "bot")
	testkit.Member(t, e.p, "bot", access.RoleAdmin, "M1")
	testkit.Member(t, e.p, "off", access.RoleAdmin, "M1")
	require.NoError(t, e.p.Admin.SetUserActive(ctx, sys, "off", false))
	testkit.User(t, e.p, "tgt")
	e.profile(t, "tgt", "M1")
	e.profile(t, "tgt", "M2")
	token, err := e.p.Admin.Impersonate(ctx, access.Subject{UserID: "super"}, "madmin", "support ticket 42", 0)
	require.NoError(t, err)
	imp, err := e.p.Admin.ResolveImpersonation(ctx, token)
	require.NoError(t, err)
	return &governance{adminEnv: e, actors: map[string]access.Subject{
		"system": sys, "super": {UserID: "super"}, "pat": {UserID: "pat"},
		"madmin": {UserID: "madmin"}, "imp": imp, "bot": {UserID: "bot"},
		"mgr": {UserID: "mgr"}, "op": {UserID: "op"}, "off": {UserID: "off"},
		"anonymous": access.Anonymous(),
	}}
}

// auditActor is the ActorID an actor's events carry.
func auditActor(s access.Subject) string {
	if s.IsSystem() {
		return access.SystemActorID
	}
	return s.UserID
}

// probe is a request that, for a user holding nothing else, only a grant
// of role at loc allows.
func probe(role, loc string) access.Request {
	switch role {
	case access.RoleViewer:
		return access.Request{Municipality: loc, Module: "equipment", Action: "view"}
	case access.RoleOperator:
		return access.Request{Municipality: loc, Module: "equipment", Action: "update"}
	case access.RoleManager:
		return access.Request{Municipality: loc, Module: "occurrences", Action: "assign"}
	case access.RoleAdmin:
		return access.Request{Municipality: loc, Module: "occurrences", Action: "delete"}
	case "db_creator":
		return access.Request{Municipality: loc, Module: "databases", Action: "create"}
	default: // platform_admin
		return access.Request{Module: "modules", Action: "configure"}
	}
}

// escalationCells are the target roles × places of the matrix: inside the
// municipal actors' scope (M1), outside it (M2), and platform-wide.
var escalationCells = []struct{ role, loc string }{
	{access.RoleViewer, "M1"}, {access.RoleViewer, "M2"},
	{access.RoleOperator, "M1"}, {access.RoleOperator, "M2"},
	{access.RoleManager, "M1"}, {access.RoleManager, "M2"},
	{access.RoleAdmin, "M1"}, {access.RoleAdmin, "M2"},
	{"db_creator", "M1"}, {"db_creator", "M2"},
	{access.RolePlatformAdmin, "*"},
}

// TestAdmin_EscalationMatrix walks every actor × target role × place
// through Grant, Revoke and AddMember. Each row of want lists, cell by cell
// of escalationCells, whether the actor may (Y) or may not (N) give or
// take that role there, as SPEC §3 says:
//   - System and super admins may everything;
//   - a platform_admin anything but platform and reserved roles;
//   - an admin (interactive, technical or impersonated: the impersonator's
//     rights never count) only inside M1, and only roles whose permissions
//     are a subset of its own: everything but reserved and platform roles;
//   - a manager only with users:manage, and then only viewer and manager
//     (operator may create occurrences, which manager may not);
//   - operators, deactivated users and anonymous actors nothing.
//
// Every allowed change is visible to the next Check and audited; every
// refusal returns ErrForbidden, changes no row and is audited with Allowed
// false.
func TestAdmin_EscalationMatrix(t *testing.T) {
	worlds := map[bool]*governance{false: governanceWorld(t, false), true: governanceWorld(t, true)}
	rows := []struct {
		actor          string
		managersManage bool
		want           string // viewer M1 M2, operator, manager, admin, db_creator, platform_admin
	}{
		{"system", false, "YY YY YY YY YY Y"},
		{"super", false, "YY YY YY YY YY Y"},
		{"pat", false, "YY YY YY YY NN N"},
		{"madmin", false, "YN YN YN YN NN N"},
		{"imp", false, "YN YN YN YN NN N"},
		{"bot", false, "YN YN YN YN NN N"},
		{"mgr", false, "NN NN NN NN NN N"},
		{"mgr", true, "YN NN YN NN NN N"},
		{"op", false, "NN NN NN NN NN N"},
		{"off", false, "NN NN NN NN NN N"},
		{"anonymous", false, "NN NN NN NN NN N"},
	}
	for _, row := range rows {
		w := worlds[row.managersManage]
		actor := w.actors[row.actor]
		want := []rune{}
		for _, r := range row.want {
			if r != ' ' {
				want = append(want, r)
			}
		}
		require.Len(t, want, len(escalationCells), row.actor)
		name := row.actor
		if row.managersManage {
			name += "_with_users_manage"
		}
		for i, cell := range escalationCells {
			allowed := want[i] == 'Y'
			t.Run(fmt.Sprintf("%s/grant/%s@%s", name, cell.role, cell.loc), func(t *testing.T) {
				w.grantCell(t, actor, cell.role, cell.loc, allowed)
			})
			t.Run(fmt.Sprintf("%s/revoke/%s@%s", name, cell.role, cell.loc), func(t *testing.T) {
				w.revokeCell(t, actor, cell.role, cell.loc, allowed)
			})
			if cell.loc != "*" {
				t.Run(fmt.Sprintf("%s/add_member/%s@%s", name, cell.role, cell.loc), func(t *testing.T) {
					w.addMemberCell(t, actor, fmt.Sprintf("n-%s-%d", name, i), cell.role, cell.loc, allowed)
				})
			}
		}
	}
}

func (w *governance) checkEvent(t *testing.T, ev audit.Event, actor access.Subject, userID, role, loc string) {
	t.Helper()
	assert.Equal(t, userID, ev.UserID)
	assert.Equal(t, loc, ev.LocationID)
	assert.Equal(t, role, ev.Details["role"])
	assert.Equal(t, actor.ImpersonatorID, ev.ImpersonatorID, "an impersonated actor's events carry both IDs")
}

// grantCell tries Grant from a state where tgt does not hold role at loc,
// and leaves tgt holding it (given by System if the actor was refused).
func (w *governance) grantCell(t *testing.T, actor access.Subject, role, loc string, allowed bool) {
	ctx := context.Background()
	require.False(t, w.hasGrant(t, "tgt", role, loc), "precondition")
	before, seq := w.refusalBaseline(t, allowed), w.mark(t)
	err := w.p.Admin.Grant(ctx, actor, "tgt", role, loc)
	var ev audit.Event
	if allowed {
		ev = w.assertApplied(t, err, seq, audit.TypeGrant, auditActor(actor))
	} else {
		ev = w.assertRefused(t, err, before, seq, audit.TypeGrant, auditActor(actor))
	}
	w.checkEvent(t, ev, actor, "tgt", role, loc)
	assert.Equal(t, allowed, w.hasGrant(t, "tgt", role, loc))
	assert.Equal(t, allowed, w.allowed(t, access.Subject{UserID: "tgt"}, probe(role, loc)).Allowed,
		"the next Check sees the change")
	if !allowed {
		require.NoError(t, w.p.Admin.Grant(ctx, access.System(), "tgt", role, loc))
	}
}

// revokeCell tries Revoke from a state where tgt holds role at loc, and
// leaves tgt without it (taken by System if the actor was refused).
func (w *governance) revokeCell(t *testing.T, actor access.Subject, role, loc string, allowed bool) {
	ctx := context.Background()
	require.True(t, w.hasGrant(t, "tgt", role, loc), "precondition")
	before, seq := w.refusalBaseline(t, allowed), w.mark(t)
	err := w.p.Admin.Revoke(ctx, actor, "tgt", role, loc)
	var ev audit.Event
	if allowed {
		ev = w.assertApplied(t, err, seq, audit.TypeRevoke, auditActor(actor))
	} else {
		ev = w.assertRefused(t, err, before, seq, audit.TypeRevoke, auditActor(actor))
	}
	w.checkEvent(t, ev, actor, "tgt", role, loc)
	assert.Equal(t, !allowed, w.hasGrant(t, "tgt", role, loc))
	assert.Equal(t, !allowed, w.allowed(t, access.Subject{UserID: "tgt"}, probe(role, loc)).Allowed,
		"the next Check sees the change")
	if !allowed {
		require.NoError(t, w.p.Admin.Revoke(ctx, access.System(), "tgt", role, loc))
	}
}

func (w *governance) addMemberCell(t *testing.T, actor access.Subject, userID, role, loc string, allowed bool) {
	ctx := context.Background()
	testkit.User(t, w.p, userID)
	before, seq := w.refusalBaseline(t, allowed), w.mark(t)
	profile, err := w.p.Admin.AddMember(ctx, actor, access.Membership{UserID: userID, LocationID: loc, Role: role})
	var ev audit.Event
	if allowed {
		ev = w.assertApplied(t, err, seq, audit.TypeMemberAdded, auditActor(actor))
		require.NotNil(t, profile)
		assert.False(t, profile.IsApproved, "municipalities require approval by default")
		assert.Equal(t, access.ReasonProfileNotApproved, w.allowed(t, access.Subject{UserID: userID}, probe(role, loc)).Reason,
			"the next Check sees the unapproved membership")
	} else {
		ev = w.assertRefused(t, err, before, seq, audit.TypeMemberAdded, auditActor(actor))
		assert.Nil(t, profile)
		_, err := w.p.Profiles.Get(ctx, userID, loc)
		assert.ErrorIs(t, err, users.ErrNotFound)
		assert.Equal(t, access.ReasonNoGrant, w.allowed(t, access.Subject{UserID: userID}, probe(role, loc)).Reason)
	}
	w.checkEvent(t, ev, actor, userID, role, loc)
	assert.Equal(t, allowed, w.hasGrant(t, userID, role, loc))
}
