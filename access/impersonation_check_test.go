package access_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
)

// impRequests are the requests compared in the impersonation tests: every
// action of the claims registry as a gate in each municipality, on records
// at each location (and at none) with and without a category, and on
// claims of the facility, of no facility and of an unknown one.
func impRequests(t *testing.T) []access.Request {
	reg := claimsRegistry(t)
	var out []access.Request
	for _, m := range reg.Modules() {
		for _, a := range reg.Actions(m) {
			out = append(out, access.Request{Module: m, Action: a})
			for _, muni := range []string{"M1", "M2"} {
				out = append(out, access.Request{Municipality: muni, Module: m, Action: a})
			}
			for _, loc := range []string{"", "D", "M1", "M2", "V1"} {
				for _, cat := range []string{"", "roads"} {
					out = append(out, access.Request{Module: m, Action: a, Resource: &access.Resource{LocationID: loc, Category: cat}})
				}
			}
			for _, org := range []string{"H1", "", "H9"} {
				out = append(out, access.Request{Module: m, Action: a, Resource: &access.Resource{OrganisationID: org}})
			}
		}
	}
	return out
}

// TestImpersonation_ChecksEqualTheTargetsOwn: while impersonating, Check,
// UserCanAccessModule and Filter answer exactly as for the target itself, for
// every kind of target that may be impersonated (super admins may not).
func TestImpersonation_ChecksEqualTheTargetsOwn(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	reqs := impRequests(t)
	reg := claimsRegistry(t)
	for _, target := range []string{"admin1", "viewer1", "op", "cat", "unap", "inact", "off", "ca", "portal", "plain", "pat"} {
		t.Run(target, func(t *testing.T) {
			token := w.impersonate(t, "super", target)
			imp, err := w.p.Admin.ResolveImpersonation(ctx, token)
			require.NoError(t, err)
			own := access.Subject{UserID: target}
			for _, r := range reqs {
				d1, err1 := w.p.Checker.Check(ctx, own, r)
				d2, err2 := w.p.Checker.Check(ctx, imp, r)
				require.Equal(t, d1, d2, "%+v (resource %+v)", r, r.Resource)
				require.Equal(t, fmt.Sprint(err1), fmt.Sprint(err2), "%+v", r)
			}
			for _, m := range reg.Modules() {
				for _, a := range reg.Actions(m) {
					ok1, err1 := w.p.Checker.UserCanAccessModule(ctx, own, m, a)
					ok2, err2 := w.p.Checker.UserCanAccessModule(ctx, imp, m, a)
					require.NoError(t, err1)
					require.NoError(t, err2)
					require.Equal(t, ok1, ok2, "%s.%s", m, a)
					f1, err1 := w.p.Checker.Filter(ctx, own, m, a)
					f2, err2 := w.p.Checker.Filter(ctx, imp, m, a)
					require.NoError(t, err1)
					require.NoError(t, err2)
					require.Equal(t, f1, f2, "filter %s.%s", m, a)
				}
			}
			require.NoError(t, w.p.Admin.StopImpersonation(ctx, token))
		})
	}
}

// TestImpersonation_NoSuperAdminBypass: the admin's own flag never leaks
// into the impersonated subject.
func TestImpersonation_NoSuperAdminBypass(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	imp, err := w.p.Admin.ResolveImpersonation(ctx, w.impersonate(t, "super", "op"))
	require.NoError(t, err)
	for _, r := range []access.Request{
		{Municipality: "M2", Module: "equipment", Action: "update"},
		{Module: "equipment", Action: "delete", Resource: &access.Resource{LocationID: "V1"}},
		{Module: "locations", Action: "manage"},
		{Module: "claims", Action: "submit", Resource: &access.Resource{OrganisationID: "H1"}},
	} {
		d, err := w.p.Checker.Check(ctx, access.Subject{UserID: "super"}, r)
		require.NoError(t, err)
		require.Equal(t, access.ReasonSuperAdmin, d.Reason)
		d, err = w.p.Checker.Check(ctx, imp, r)
		require.NoError(t, err)
		assert.False(t, d.Allowed, "%+v", r)
	}
	ok, err := w.p.Checker.UserCanAccessModule(ctx, imp, "locations", "manage")
	require.NoError(t, err)
	assert.False(t, ok)
	f, err := w.p.Checker.Filter(ctx, imp, "equipment", "update")
	require.NoError(t, err)
	assert.False(t, f.Unrestricted(), "the target's filter, not the admin's")
}

// TestImpersonation_AuditCarriesBothIDs: decision events and the change
// events of an impersonated actor (allowed or refused, guarded or
// store-level) name the target as actor and the admin as impersonator; the
// actor has the target's rights, never the admin's.
func TestImpersonation_AuditCarriesBothIDs(t *testing.T) {
	w := newImpWorld(t)
	ctx := context.Background()
	_, err := w.p.Affiliations.CreateOrganisation(ctx, affiliation.Organisation{ID: "H2", Name: "Other", Kind: "health_facility", LocationID: "M2", Services: []string{"claims"}})
	require.NoError(t, err)
	imp, err := w.p.Admin.ResolveImpersonation(ctx, w.impersonate(t, "super", "admin1"))
	require.NoError(t, err)
	both := func(t *testing.T, ev audit.Event, allowed bool) {
		t.Helper()
		assert.Equal(t, "admin1", ev.ActorID)
		assert.Equal(t, "super", ev.ImpersonatorID)
		require.NotNil(t, ev.Allowed)
		assert.Equal(t, allowed, *ev.Allowed)
	}

	t.Run("denied decision", func(t *testing.T) {
		d, err := w.p.Checker.Check(ctx, imp, access.Request{Municipality: "M2", Module: "equipment", Action: "delete"})
		require.NoError(t, err)
		require.False(t, d.Allowed)
		ev := lastEventOfType(t, w.p, audit.TypeDecisionDenied)
		both(t, ev, false)
		assert.Equal(t, "M2", ev.LocationID)
	})
	t.Run("allowed grant within the target's rights", func(t *testing.T) {
		require.NoError(t, w.p.Admin.Grant(ctx, imp, "viewer1", access.RoleOperator, "M1"))
		both(t, lastEventOfType(t, w.p, audit.TypeGrant), true)
	})
	t.Run("grant beyond the target's rights", func(t *testing.T) {
		err := w.p.Admin.Grant(ctx, imp, "viewer1", access.RolePlatformAdmin, "*")
		assert.ErrorIs(t, err, access.ErrForbidden)
		both(t, lastEventOfType(t, w.p, audit.TypeGrant), false)
	})
	t.Run("super admin flag: never with the impersonator's rights", func(t *testing.T) {
		err := w.p.Admin.SetSuperAdmin(ctx, imp, "op", true)
		assert.ErrorIs(t, err, access.ErrForbidden)
		both(t, lastEventOfType(t, w.p, audit.TypeSuperAdmin), false)
	})
	t.Run("link", func(t *testing.T) {
		require.NoError(t, w.p.Admin.Link(ctx, imp, affiliation.Link{UserID: "plain", OrganisationID: "H1"}))
		both(t, lastEventOfType(t, w.p, audit.TypeLink), true)
		require.NoError(t, w.p.Admin.Unlink(ctx, imp, "plain", "H1"))
		both(t, lastEventOfType(t, w.p, audit.TypeUnlink), true)
	})
	t.Run("organisation outside the target's reach", func(t *testing.T) {
		err := w.p.Admin.DeleteOrganisation(ctx, imp, "H2")
		assert.ErrorIs(t, err, access.ErrForbidden)
		both(t, lastEventOfType(t, w.p, audit.TypeOrganisationDeleted), false)
	})
	t.Run("store-level write with the subject in the context", func(t *testing.T) {
		_, err := w.p.Affiliations.CreateOrganisation(access.WithSubject(ctx, imp),
			affiliation.Organisation{ID: "H3", Name: "Third", Kind: "health_facility", LocationID: "V1"})
		require.NoError(t, err)
		ev := lastEventOfType(t, w.p, audit.TypeOrganisationCreated)
		assert.Equal(t, "admin1", ev.ActorID)
		assert.Equal(t, "super", ev.ImpersonatorID)
	})
	t.Run("nested impersonation", func(t *testing.T) {
		_, err := w.p.Admin.Impersonate(ctx, imp, "op", "nested", 0)
		assert.ErrorIs(t, err, access.ErrForbidden)
		both(t, lastEventOfType(t, w.p, audit.TypeImpersonationStart), false)
	})
}
