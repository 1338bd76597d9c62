package access_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// TestAdmin_BadInput: malformed or unknown input returns a typed error
// that is not a refusal, changes nothing and records nothing, whoever
// asks; nothing panics. A failure inside the write (here: a department of
// another municipality, which only the store detects) rolls the whole
// change back, audit event included.
func TestAdmin_BadInput(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, governanceRegistry(t, false))
	e.tree(t)
	testkit.Locations(t, e.p, location.Location{ID: "gone", Level: "village", ParentID: "M2"})
	require.NoError(t, e.p.Admin.DeleteLocation(ctx, sys, "gone"))
	testkit.Member(t, e.p, "op", access.RoleOperator, "M1")
	testkit.User(t, e.p, "dead")
	require.NoError(t, e.p.Admin.DeleteUser(ctx, sys, "dead"))
	testkit.User(t, e.p, "free")
	_, err := e.p.Profiles.CreateDepartment(ctx, users.Department{ID: "m2dept", MunicipalityID: "M2", Name: "Roads of M2"})
	require.NoError(t, err)
	long := strings.Repeat("x", 65)
	a := e.p.Admin

	cases := []struct {
		name string
		run  func() error
		want error
	}{
		{"grant: empty user", func() error { return a.Grant(ctx, sys, "", "viewer", "M1") }, access.ErrInvalidInput},
		{"grant: over-long user", func() error { return a.Grant(ctx, sys, long, "viewer", "M1") }, access.ErrInvalidInput},
		{"grant: malformed user", func() error { return a.Grant(ctx, sys, "a b", "viewer", "M1") }, access.ErrInvalidInput},
		{"grant: unknown user", func() error { return a.Grant(ctx, sys, "ghost", "viewer", "M1") }, users.ErrNotFound},
		{"grant: deleted user", func() error { return a.Grant(ctx, sys, "dead", "viewer", "M1") }, users.ErrNotFound},
		{"grant: unknown role", func() error { return a.Grant(ctx, sys, "free", "emperor", "M1") }, access.ErrUnknownRole},
		{"grant: empty role", func() error { return a.Grant(ctx, sys, "free", "", "M1") }, access.ErrUnknownRole},
		{"grant: pseudo-role public", func() error { return a.Grant(ctx, sys, "free", "public", "M1") }, access.ErrUnknownRole},
		{"grant: pseudo-role authenticated", func() error { return a.Grant(ctx, sys, "free", "authenticated", "M1") }, access.ErrUnknownRole},
		{"grant: municipal role platform-wide", func() error { return a.Grant(ctx, sys, "free", "admin", "*") }, access.ErrInvalidInput},
		{"grant: platform role at a location", func() error { return a.Grant(ctx, sys, "free", "platform_admin", "M1") }, access.ErrInvalidInput},
		{"grant: empty location", func() error { return a.Grant(ctx, sys, "free", "viewer", "") }, access.ErrInvalidInput},
		{"grant: malformed location", func() error { return a.Grant(ctx, sys, "free", "viewer", "M 1") }, access.ErrInvalidInput},
		{"grant: unknown location", func() error { return a.Grant(ctx, sys, "free", "viewer", "nowhere") }, location.ErrNotFound},
		{"grant: deleted location", func() error { return a.Grant(ctx, sys, "free", "viewer", "gone") }, location.ErrNotFound},
		{"grant: no profile anchors it", func() error { return a.Grant(ctx, sys, "free", "viewer", "M1") }, access.ErrInvalidInput},
		{"revoke: unknown role", func() error { return a.Revoke(ctx, sys, "op", "emperor", "M1") }, access.ErrUnknownRole},
		{"revoke: unknown user", func() error { return a.Revoke(ctx, sys, "ghost", "operator", "M1") }, users.ErrNotFound},
		{"add member: platform-wide", func() error { return addMember(a, sys, "free", "*", "viewer", "", nil) }, access.ErrInvalidInput},
		{"add member: platform role", func() error { return addMember(a, sys, "free", "M1", "platform_admin", "", nil) }, access.ErrInvalidInput},
		{"add member: second profile at a place", func() error { return addMember(a, sys, "op", "M1", "viewer", "", nil) }, users.ErrDuplicate},
		{"add member: empty category", func() error { return addMember(a, sys, "free", "M1", "viewer", "", []string{""}) }, access.ErrInvalidInput},
		{"add member: malformed category", func() error { return addMember(a, sys, "free", "M1", "viewer", "", []string{"a b"}) }, access.ErrInvalidInput},
		{"add member: unknown department", func() error { return addMember(a, sys, "free", "M1", "viewer", "nodept", nil) }, users.ErrNotFound},
		{"add member: department of another municipality", func() error { return addMember(a, sys, "free", "M1", "viewer", "m2dept", nil) }, users.ErrInvalidInput},
		{"add member: deleted user", func() error { return addMember(a, sys, "dead", "M1", "viewer", "", nil) }, users.ErrNotFound},
		{"approve: no profile there", func() error { return a.Approve(ctx, sys, "op", "M2") }, users.ErrNotFound},
		{"approve: malformed location", func() error { return a.Approve(ctx, sys, "op", "") }, access.ErrInvalidInput},
		{"approve: unknown location", func() error { return a.Approve(ctx, sys, "op", "nowhere") }, location.ErrNotFound},
		{"approve: unknown user", func() error { return a.Approve(ctx, sys, "ghost", "M1") }, users.ErrNotFound},
		{"profile active: no profile there", func() error { return a.SetProfileActive(ctx, sys, "free", "M1", false) }, users.ErrNotFound},
		{"user active: unknown user", func() error { return a.SetUserActive(ctx, sys, "ghost", false) }, users.ErrNotFound},
		{"user active: deleted user", func() error { return a.SetUserActive(ctx, sys, "dead", true) }, users.ErrNotFound},
		{"user active: empty user", func() error { return a.SetUserActive(ctx, sys, "", false) }, access.ErrInvalidInput},
		{"super admin: unknown user", func() error { return a.SetSuperAdmin(ctx, sys, "ghost", true) }, users.ErrNotFound},
		{"super admin: over-long user", func() error { return a.SetSuperAdmin(ctx, sys, long, true) }, access.ErrInvalidInput},
		{"delete user: unknown user", func() error { return a.DeleteUser(ctx, sys, "ghost") }, users.ErrNotFound},
		{"anonymize: live user", func() error { return a.AnonymizeUser(ctx, sys, "free") }, access.ErrInvalidInput},
		{"module: unknown module", func() error { return a.SetModuleEnabled(ctx, sys, "M1", "nope", false) }, access.ErrUnknownModule},
		{"module: platform module", func() error { return a.SetModuleEnabled(ctx, sys, "M1", "users", false) }, access.ErrInvalidInput},
		{"module: a village", func() error { return a.SetModuleEnabled(ctx, sys, "V1", "equipment", false) }, access.ErrInvalidInput},
		{"module: a district", func() error { return a.SetModuleEnabled(ctx, sys, "D", "equipment", false) }, access.ErrInvalidInput},
		{"module: unknown municipality", func() error { return a.SetModuleEnabled(ctx, sys, "nowhere", "equipment", false) }, location.ErrNotFound},
		{"module: deleted location", func() error { return a.SetModuleEnabled(ctx, sys, "gone", "equipment", false) }, location.ErrNotFound},
		{"approval: a district", func() error { return a.SetApprovalRequired(ctx, sys, "D", false) }, access.ErrInvalidInput},
		{"approval: malformed", func() error { return a.SetApprovalRequired(ctx, sys, "*", false) }, access.ErrInvalidInput},
		{"delete location: platform domain", func() error { return a.DeleteLocation(ctx, sys, "*") }, access.ErrInvalidInput},
		{"delete location: already deleted", func() error { return a.DeleteLocation(ctx, sys, "gone") }, location.ErrNotFound},
		{"move location: unknown parent", func() error { return a.MoveLocation(ctx, sys, "V1", "nowhere") }, location.ErrNotFound},
		{"malformed actor", func() error { return a.Grant(ctx, access.Subject{UserID: "a b"}, "free", "viewer", "M1") }, access.ErrInvalidInput},
		{"over-long actor", func() error { return a.SetModuleEnabled(ctx, access.Subject{UserID: long}, "M1", "equipment", false) }, access.ErrInvalidInput},
		{"a user subject named system is not System", func() error {
			return a.Grant(ctx, access.Subject{UserID: "system"}, "free", "viewer", "M1")
		}, access.ErrInvalidInput},
		{"impersonator without user", func() error {
			return a.Grant(ctx, access.Subject{ImpersonatorID: "root"}, "free", "viewer", "M1")
		}, access.ErrInvalidInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, seq := e.fingerprint(t), e.mark(t)
			var err error
			require.NotPanics(t, func() { err = tc.run() })
			assert.ErrorIs(t, err, tc.want)
			assert.NotErrorIs(t, err, access.ErrForbidden, "bad input is not a refusal")
			assert.Equal(t, before, e.fingerprint(t), "nothing changed")
			assert.Empty(t, e.changesSince(t, seq), "nothing recorded")
		})
	}
}

func addMember(a *access.Admin, actor access.Subject, user, loc, role, dept string, cats []string) error {
	_, err := a.AddMember(context.Background(), actor, access.Membership{
		UserID: user, LocationID: loc, Role: role, DepartmentID: dept, AllowedCategories: cats,
	})
	return err
}

// TestAdmin_RefusesActorsThatAreNoUsers: an actor naming no user, a
// deleted user, or an impersonation that is no longer live is refused
// (ErrForbidden, audited under the ID it gave), never mistaken for System.
func TestAdmin_RefusesActorsThatAreNoUsers(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, nil)
	e.tree(t)
	e.superAdmin(t, "root")
	testkit.Member(t, e.p, "madmin", access.RoleAdmin, "M1")
	testkit.User(t, e.p, "free")
	testkit.User(t, e.p, "dead")
	require.NoError(t, e.p.Admin.DeleteUser(ctx, sys, "dead"))
	token, err := e.p.Admin.Impersonate(ctx, access.Subject{UserID: "root"}, "madmin", "looking at a ticket", 0)
	require.NoError(t, err)
	imp, err := e.p.Admin.ResolveImpersonation(ctx, token)
	require.NoError(t, err)
	require.NoError(t, e.p.Admin.StopImpersonation(ctx, token))

	for _, tc := range []struct {
		name  string
		actor access.Subject
		extra error
	}{
		{"unknown user", access.Subject{UserID: "ghost"}, nil},
		{"deleted user", access.Subject{UserID: "dead"}, nil},
		{"stopped impersonation", imp, access.ErrInvalidToken},
		{"anonymous", access.Anonymous(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, seq := e.fingerprint(t), e.mark(t)
			err := e.p.Admin.Grant(ctx, tc.actor, "madmin", access.RoleViewer, "M1")
			ev := e.assertRefused(t, err, before, seq, audit.TypeGrant, tc.actor.UserID)
			if tc.extra != nil {
				assert.ErrorIs(t, err, tc.extra)
			}
			assert.Equal(t, tc.actor.ImpersonatorID, ev.ImpersonatorID)
		})
	}
}
