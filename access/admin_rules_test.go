package access_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// governanceActors is the column order of the want strings of
// TestAdmin_WhoMayChangeWhat.
var governanceActors = []string{"system", "super", "pat", "madmin", "imp", "bot", "mgr", "op", "off", "anonymous"}

// govOp is one guarded change tried by every actor. tag (the actor's
// name) keeps per-actor targets apart.
type govOp struct {
	name    string
	typ     string
	want    string // per governanceActors: Y may, N may not
	prepare func(t *testing.T, w *governance, tag string)
	run     func(w *governance, actor access.Subject, tag string) error
	// visible checks, after an allowed change, that the next Check sees it.
	visible func(t *testing.T, w *governance, tag string)
	reset   func(t *testing.T, w *governance, tag string)
}

// TestAdmin_WhoMayChangeWhat tries every guarded change other than grants
// with every kind of actor (see governanceWorld), against SPEC §3: super
// admins alone make or unmake super admins; SetUserActive, DeleteUser and
// AnonymizeUser need a super admin or a platform_admin, and a
// platform_admin cannot end a super admin or a holder of a role only super
// admins grant; modules:configure and locations:manage are platform
// actions; SetApprovalRequired, Approve and SetProfileActive need
// users:manage covering the place, and Approve and SetProfileActive that
// the actor could grant every role the target holds there.
func TestAdmin_WhoMayChangeWhat(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	w := governanceWorld(t, false)
	w.platformAdmin(t, "pat2")
	testkit.Member(t, w.p, "dbc", "db_creator", "M1")
	member := func(t *testing.T, id, role, loc string) {
		t.Helper()
		testkit.User(t, w.p, id)
		_, err := w.p.Admin.AddMember(ctx, sys, access.Membership{UserID: id, LocationID: loc, Role: role})
		require.NoError(t, err)
	}
	reason := func(t *testing.T, user string, req access.Request) access.Reason {
		t.Helper()
		return w.allowed(t, access.Subject{UserID: user}, req).Reason
	}
	ops := []govOp{
		{
			name: "flag super admin", typ: audit.TypeSuperAdmin, want: "YYNNNNNNNN",
			run: func(w *governance, a access.Subject, _ string) error {
				return w.p.Admin.SetSuperAdmin(ctx, a, "tgt", true)
			},
			visible: func(t *testing.T, w *governance, _ string) {
				assert.Equal(t, access.ReasonSuperAdmin, reason(t, "tgt", probe(access.RoleAdmin, "M2")))
			},
			reset: func(t *testing.T, w *governance, _ string) {
				require.NoError(t, w.p.Admin.SetSuperAdmin(ctx, sys, "tgt", false))
			},
		},
		{
			name: "unflag super admin", typ: audit.TypeSuperAdmin, want: "YYNNNNNNNN",
			run: func(w *governance, a access.Subject, _ string) error {
				return w.p.Admin.SetSuperAdmin(ctx, a, "super2", false)
			},
			visible: func(t *testing.T, w *governance, _ string) {
				assert.Equal(t, access.ReasonNoGrant, reason(t, "super2", probe(access.RoleAdmin, "M2")))
			},
			reset: func(t *testing.T, w *governance, _ string) {
				require.NoError(t, w.p.Admin.SetSuperAdmin(ctx, sys, "super2", true))
			},
		},
		{
			name: "deactivate user", typ: audit.TypeUserActive, want: "YYYNNNNNNN",
			run: func(w *governance, a access.Subject, _ string) error {
				return w.p.Admin.SetUserActive(ctx, a, "tgt", false)
			},
			visible: func(t *testing.T, w *governance, _ string) {
				assert.Equal(t, access.ReasonUserInactive, reason(t, "tgt", access.Request{Municipality: "M1", Module: "occurrences", Action: "view"}))
			},
			reset: func(t *testing.T, w *governance, _ string) {
				require.NoError(t, w.p.Admin.SetUserActive(ctx, sys, "tgt", true))
			},
		},
		{
			name: "deactivate super admin", typ: audit.TypeUserActive, want: "YYNNNNNNNN",
			run: func(w *governance, a access.Subject, _ string) error {
				return w.p.Admin.SetUserActive(ctx, a, "super2", false)
			},
			reset: func(t *testing.T, w *governance, _ string) {
				require.NoError(t, w.p.Admin.SetUserActive(ctx, sys, "super2", true))
			},
		},
		{
			name: "deactivate platform_admin", typ: audit.TypeUserActive, want: "YYNNNNNNNN",
			run: func(w *governance, a access.Subject, _ string) error {
				return w.p.Admin.SetUserActive(ctx, a, "pat2", false)
			},
			reset: func(t *testing.T, w *governance, _ string) {
				require.NoError(t, w.p.Admin.SetUserActive(ctx, sys, "pat2", true))
			},
		},
		{
			name: "deactivate reserved role holder", typ: audit.TypeUserActive, want: "YYNNNNNNNN",
			run: func(w *governance, a access.Subject, _ string) error {
				return w.p.Admin.SetUserActive(ctx, a, "dbc", false)
			},
			reset: func(t *testing.T, w *governance, _ string) {
				require.NoError(t, w.p.Admin.SetUserActive(ctx, sys, "dbc", true))
			},
		},
		{
			name: "delete user", typ: audit.TypeUserDeleted, want: "YYYNNNNNNN",
			prepare: func(t *testing.T, w *governance, tag string) {
				testkit.Member(t, w.p, "d-"+tag, access.RoleOperator, "M1")
			},
			run: func(w *governance, a access.Subject, tag string) error { return w.p.Admin.DeleteUser(ctx, a, "d-"+tag) },
			visible: func(t *testing.T, w *governance, tag string) {
				assert.Equal(t, access.ReasonUserInactive, reason(t, "d-"+tag, probe(access.RoleOperator, "M1")))
			},
		},
		{
			name: "anonymize user", typ: audit.TypeUserAnonymized, want: "YYYNNNNNNN",
			prepare: func(t *testing.T, w *governance, tag string) {
				testkit.User(t, w.p, "a-"+tag)
				require.NoError(t, w.p.Admin.DeleteUser(ctx, sys, "a-"+tag))
			},
			run: func(w *governance, a access.Subject, tag string) error {
				return w.p.Admin.AnonymizeUser(ctx, a, "a-"+tag)
			},
		},
		{
			name: "disable module", typ: audit.TypeModuleEnabled, want: "YYYNNNNNNN",
			run: func(w *governance, a access.Subject, _ string) error {
				return w.p.Admin.SetModuleEnabled(ctx, a, "M1", "equipment", false)
			},
			visible: func(t *testing.T, w *governance, _ string) {
				assert.Equal(t, access.ReasonModuleDisabled, reason(t, "madmin", probe(access.RoleViewer, "M1")))
			},
			reset: func(t *testing.T, w *governance, _ string) {
				require.NoError(t, w.p.Admin.SetModuleEnabled(ctx, sys, "M1", "equipment", true))
			},
		},
		{
			name: "approval off inside", typ: audit.TypeApprovalRequired, want: "YYYYYYNNNN",
			run: func(w *governance, a access.Subject, _ string) error {
				return w.p.Admin.SetApprovalRequired(ctx, a, "M1", false)
			},
			reset: func(t *testing.T, w *governance, _ string) {
				require.NoError(t, w.p.Admin.SetApprovalRequired(ctx, sys, "M1", true))
			},
		},
		{
			name: "approval off outside", typ: audit.TypeApprovalRequired, want: "YYYNNNNNNN",
			run: func(w *governance, a access.Subject, _ string) error {
				return w.p.Admin.SetApprovalRequired(ctx, a, "M2", false)
			},
			reset: func(t *testing.T, w *governance, _ string) {
				require.NoError(t, w.p.Admin.SetApprovalRequired(ctx, sys, "M2", true))
			},
		},
		{
			name: "move location", typ: audit.TypeLocationMoved, want: "YYYNNNNNNN",
			prepare: func(t *testing.T, w *governance, tag string) {
				testkit.Locations(t, w.p, location.Location{ID: "L-" + tag, Level: "village", ParentID: "M1"})
			},
			run: func(w *governance, a access.Subject, tag string) error {
				return w.p.Admin.MoveLocation(ctx, a, "L-"+tag, "M2")
			},
			visible: func(t *testing.T, w *governance, tag string) {
				d := w.allowed(t, access.Subject{UserID: "madmin"}, access.Request{Module: "equipment", Action: "view", Resource: &access.Resource{LocationID: "L-" + tag}})
				assert.Equal(t, access.ReasonOutOfScope, d.Reason, "the village left the admin's municipality")
			},
		},
		{
			name: "delete location", typ: audit.TypeLocationDeleted, want: "YYYNNNNNNN",
			prepare: func(t *testing.T, w *governance, tag string) {
				testkit.Locations(t, w.p, location.Location{ID: "X-" + tag, Level: "village", ParentID: "M2"})
			},
			run: func(w *governance, a access.Subject, tag string) error {
				return w.p.Admin.DeleteLocation(ctx, a, "X-"+tag)
			},
			visible: func(t *testing.T, w *governance, tag string) {
				_, err := w.p.Checker.Check(ctx, access.Subject{UserID: "super"}, access.Request{Module: "equipment", Action: "view", Resource: &access.Resource{LocationID: "X-" + tag}})
				assert.ErrorIs(t, err, location.ErrNotFound)
			},
		},
		{
			name: "approve operator inside", typ: audit.TypeApprove, want: "YYYYYYNNNN",
			prepare: func(t *testing.T, w *governance, tag string) { member(t, "o-"+tag, access.RoleOperator, "M1") },
			run: func(w *governance, a access.Subject, tag string) error {
				return w.p.Admin.Approve(ctx, a, "o-"+tag, "M1")
			},
			visible: func(t *testing.T, w *governance, tag string) {
				assert.Equal(t, access.ReasonRole, reason(t, "o-"+tag, probe(access.RoleOperator, "M1")))
			},
		},
		{
			name: "approve operator outside", typ: audit.TypeApprove, want: "YYYNNNNNNN",
			prepare: func(t *testing.T, w *governance, tag string) { member(t, "p-"+tag, access.RoleOperator, "M2") },
			run: func(w *governance, a access.Subject, tag string) error {
				return w.p.Admin.Approve(ctx, a, "p-"+tag, "M2")
			},
		},
		{
			name: "approve reserved role holder", typ: audit.TypeApprove, want: "YYNNNNNNNN",
			prepare: func(t *testing.T, w *governance, tag string) { member(t, "r-"+tag, "db_creator", "M1") },
			run: func(w *governance, a access.Subject, tag string) error {
				return w.p.Admin.Approve(ctx, a, "r-"+tag, "M1")
			},
		},
		{
			name: "deactivate profile", typ: audit.TypeProfileActive, want: "YYYYYYNNNN",
			prepare: func(t *testing.T, w *governance, tag string) {
				testkit.Member(t, w.p, "q-"+tag, access.RoleOperator, "M1")
			},
			run: func(w *governance, a access.Subject, tag string) error {
				return w.p.Admin.SetProfileActive(ctx, a, "q-"+tag, "M1", false)
			},
			visible: func(t *testing.T, w *governance, tag string) {
				assert.Equal(t, access.ReasonProfileInactive, reason(t, "q-"+tag, probe(access.RoleOperator, "M1")))
			},
		},
	}
	for _, op := range ops {
		require.Len(t, op.want, len(governanceActors), op.name)
		for i, tag := range governanceActors {
			actor := w.actors[tag]
			allowed := op.want[i] == 'Y'
			t.Run(op.name+"/"+tag, func(t *testing.T) {
				if op.prepare != nil {
					op.prepare(t, w, tag)
				}
				before, seq := w.refusalBaseline(t, allowed), w.mark(t)
				err := op.run(w, actor, tag)
				if !allowed {
					ev := w.assertRefused(t, err, before, seq, op.typ, auditActor(actor))
					assert.Equal(t, actor.ImpersonatorID, ev.ImpersonatorID)
					return
				}
				ev := w.assertApplied(t, err, seq, op.typ, auditActor(actor))
				assert.Equal(t, actor.ImpersonatorID, ev.ImpersonatorID)
				if op.visible != nil {
					op.visible(t, w, tag)
				}
				if op.reset != nil {
					op.reset(t, w, tag)
				}
			})
		}
	}
}

// TestApprove_NeedsEveryRoleHeldThere: with users:manage extended to
// managers, a manager may approve and deactivate a profile only when it
// could grant every role the user holds through that profile, grants below
// the profile's location included.
func TestApprove_NeedsEveryRoleHeldThere(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	w := governanceWorld(t, true)
	mgr := access.Subject{UserID: "mgr"}
	cases := []struct {
		name   string
		grants [][2]string // role, location
		want   bool
	}{
		{"viewer", [][2]string{{access.RoleViewer, "M1"}}, true},
		{"manager, its own role", [][2]string{{access.RoleManager, "M1"}}, true},
		{"operator: creates what managers cannot", [][2]string{{access.RoleOperator, "M1"}}, false},
		{"admin", [][2]string{{access.RoleAdmin, "M1"}}, false},
		{"viewer here, admin at a village below", [][2]string{{access.RoleViewer, "M1"}, {access.RoleAdmin, "V1"}}, false},
		{"viewer here, admin elsewhere", [][2]string{{access.RoleViewer, "M1"}, {access.RoleAdmin, "M2"}}, true},
		{"no role at all", nil, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := "h" + string(rune('a'+i))
			testkit.User(t, w.p, id)
			_, err := w.p.Profiles.Create(ctx, usersProfile(id, "M1"))
			require.NoError(t, err)
			_, err = w.p.Profiles.Create(ctx, usersProfile(id, "M2"))
			require.NoError(t, err)
			for _, g := range tc.grants {
				require.NoError(t, w.p.Admin.Grant(ctx, sys, id, g[0], g[1]))
			}
			for _, step := range []struct {
				typ string
				run func() error
			}{
				{audit.TypeApprove, func() error { return w.p.Admin.Approve(ctx, mgr, id, "M1") }},
				{audit.TypeProfileActive, func() error { return w.p.Admin.SetProfileActive(ctx, mgr, id, "M1", false) }},
			} {
				before, seq := w.refusalBaseline(t, tc.want), w.mark(t)
				err := step.run()
				if tc.want {
					w.assertApplied(t, err, seq, step.typ, "mgr")
				} else {
					w.assertRefused(t, err, before, seq, step.typ, "mgr")
				}
			}
		})
	}
}
