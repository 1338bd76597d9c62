package access_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// claimsRegistry is the default registry plus health insurance claims:
// claim administrators (inheriting viewer) view and submit the claims of
// the facilities they are affiliated with.
func claimsRegistry(t testing.TB) *access.Registry {
	t.Helper()
	reg := access.DefaultRegistry()
	require.NoError(t, reg.AddRole(access.Role{Name: "claim_admin", Inherits: []string{access.RoleViewer}}))
	require.NoError(t, reg.AddModule("claims", map[string]access.Action{
		"view":   {Roles: []string{"claim_admin"}, ReadOnly: true, Affiliated: true},
		"submit": {Roles: []string{"claim_admin"}, Affiliated: true},
	}))
	return reg
}

// affWorld is the fixture of the affiliation tests, on a fresh database
// with an injected clock (its DSN opens a second platform on it):
//
//	R ── D ─┬─ M1 ─┬─ V1    H1 (claims), H3 (occurrences only)
//	        │      └─ V2    H4 (claims)
//	        └─ M2           H2 (claims)
//
// Users (claim_admin at M1 unless said otherwise):
//
//	ca      linked to H1, H2, H3 (open), H4 during [t0+1h, t0+2h)
//	past    linked to H1 during [t0-2h, t0-1h)
//	cat     categories [dental], linked to H1 and H2
//	unap    profile not approved, linked to H1
//	inact   profile inactive, linked to H1
//	noaff   no links
//	vill    claim_admin at V2 (profile at V2), linked to H1 and H4
//	portal  no profile, no grant, linked to H1
//	super   super admin
type affWorld struct {
	p     *townhall.Platform
	clock *testkit.Clock
	dsn   string
	t0    time.Time
}

func newAffWorld(t *testing.T) *affWorld {
	t.Helper()
	ctx := context.Background()
	clock := testkit.NewClock()
	db, dsn := dbtest.NewWithDSN(t)
	p, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), townhall.WithClock(clock.Now),
		townhall.WithRegistry(claimsRegistry(t)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	w := &affWorld{p: p, clock: clock, dsn: dsn, t0: clock.Now()}

	testkit.Locations(t, p,
		location.Location{ID: "R", Level: "region"},
		location.Location{ID: "D", Level: "district", ParentID: "R"},
		location.Location{ID: "M1", Level: "municipality", ParentID: "D"},
		location.Location{ID: "M2", Level: "municipality", ParentID: "D"},
		location.Location{ID: "V1", Level: "village", ParentID: "M1"},
		location.Location{ID: "V2", Level: "village", ParentID: "M1"},
	)
	for _, o := range []affiliation.Organisation{
		{ID: "H1", Name: "Clinic One", Kind: "health_facility", LocationID: "V1", Services: []string{"claims"}},
		{ID: "H2", Name: "Clinic Two", Kind: "health_facility", LocationID: "M2", Services: []string{"claims"}},
		{ID: "H3", Name: "Pharmacy", Kind: "health_facility", LocationID: "V1", Services: []string{"occurrences"}},
		{ID: "H4", Name: "Clinic Four", Kind: "health_facility", LocationID: "V2", Services: []string{"claims"}},
	} {
		_, err := p.Affiliations.CreateOrganisation(ctx, o)
		require.NoError(t, err)
	}
	sys := access.System()
	testkit.User(t, p, "super")
	require.NoError(t, p.Admin.SetSuperAdmin(ctx, sys, "super", true))
	for _, id := range []string{"ca", "past", "noaff", "inact"} {
		testkit.Member(t, p, id, "claim_admin", "M1")
	}
	require.NoError(t, p.Admin.SetProfileActive(ctx, sys, "inact", "M1", false))
	testkit.User(t, p, "cat")
	_, err = p.Admin.AddMember(ctx, sys, access.Membership{UserID: "cat", LocationID: "M1", Role: "claim_admin", AllowedCategories: []string{"dental"}})
	require.NoError(t, err)
	require.NoError(t, p.Admin.Approve(ctx, sys, "cat", "M1"))
	testkit.User(t, p, "unap")
	_, err = p.Admin.AddMember(ctx, sys, access.Membership{UserID: "unap", LocationID: "M1", Role: "claim_admin"})
	require.NoError(t, err)
	testkit.Member(t, p, "vill", "claim_admin", "V2")
	testkit.User(t, p, "portal")

	at := func(d time.Duration) *time.Time { x := w.t0.Add(d); return &x }
	for _, l := range []affiliation.Link{
		{UserID: "ca", OrganisationID: "H1"}, {UserID: "ca", OrganisationID: "H2"}, {UserID: "ca", OrganisationID: "H3"},
		{UserID: "ca", OrganisationID: "H4", ValidFrom: at(time.Hour), ValidTo: at(2 * time.Hour)},
		{UserID: "past", OrganisationID: "H1", ValidFrom: at(-2 * time.Hour), ValidTo: at(-time.Hour)},
		{UserID: "cat", OrganisationID: "H1"}, {UserID: "cat", OrganisationID: "H2"},
		{UserID: "unap", OrganisationID: "H1"}, {UserID: "inact", OrganisationID: "H1"},
		{UserID: "vill", OrganisationID: "H1"}, {UserID: "vill", OrganisationID: "H4"},
		{UserID: "portal", OrganisationID: "H1"},
	} {
		require.NoError(t, p.Admin.Link(ctx, sys, l))
	}
	return w
}

// claim is a request on a claim of organisation org.
func claimReq(action, org, category string) access.Request {
	return access.Request{Module: "claims", Action: action, Resource: &access.Resource{OrganisationID: org, Category: category}}
}

type affWant struct {
	allowed bool
	reason  access.Reason
	domain  string
}

func TestCheck_AffiliatedActions(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	inM := func(muni string, r access.Request) access.Request { r.Municipality = muni; return r }
	cases := []struct {
		name    string
		subject string
		req     access.Request
		want    affWant
	}{
		{"linked, organisation in the grant's subtree", "ca", claimReq("submit", "H1", ""), affWant{true, access.ReasonRole, "M1"}},
		{"named municipality holding the organisation", "ca", inM("M1", claimReq("submit", "H1", "")), affWant{true, access.ReasonRole, "M1"}},
		{"named municipality not holding the organisation", "ca", inM("M2", claimReq("submit", "H1", "")), affWant{false, access.ReasonOutOfScope, ""}},
		{"read-only affiliated action", "ca", claimReq("view", "H1", "x"), affWant{true, access.ReasonRole, "M1"}},
		{"linked, organisation outside the grant", "ca", claimReq("submit", "H2", ""), affWant{false, access.ReasonOutOfScope, ""}},
		{"linked, module not among its services", "ca", claimReq("submit", "H3", ""), affWant{false, access.ReasonNotAffiliated, ""}},
		{"link not started yet", "ca", claimReq("submit", "H4", ""), affWant{false, access.ReasonNotAffiliated, ""}},
		{"link ended", "past", claimReq("submit", "H1", ""), affWant{false, access.ReasonNotAffiliated, ""}},
		{"no link", "noaff", claimReq("submit", "H1", ""), affWant{false, access.ReasonNotAffiliated, ""}},
		{"not affiliated comes before out of scope", "noaff", claimReq("submit", "H2", ""), affWant{false, access.ReasonNotAffiliated, ""}},
		{"unknown organisation", "ca", claimReq("submit", "nowhere", ""), affWant{false, access.ReasonNotAffiliated, ""}},
		{"no organisation", "ca", claimReq("submit", "", ""), affWant{false, access.ReasonNotAffiliated, ""}},
		{"category allowed", "cat", claimReq("submit", "H1", "dental"), affWant{true, access.ReasonRole, "M1"}},
		{"category refused", "cat", claimReq("submit", "H1", "optical"), affWant{false, access.ReasonCategory, ""}},
		{"uncategorised record, restricted profile", "cat", claimReq("submit", "H1", ""), affWant{false, access.ReasonCategory, ""}},
		{"category comes before out of scope", "cat", claimReq("submit", "H2", "optical"), affWant{false, access.ReasonCategory, ""}},
		{"not affiliated comes before category", "cat", claimReq("submit", "H4", "optical"), affWant{false, access.ReasonNotAffiliated, ""}},
		{"profile not approved", "unap", claimReq("submit", "H1", ""), affWant{false, access.ReasonProfileNotApproved, ""}},
		{"profile inactive", "inact", claimReq("submit", "H1", ""), affWant{false, access.ReasonProfileInactive, ""}},
		{"grant at a village covers its facility", "vill", claimReq("submit", "H4", ""), affWant{true, access.ReasonRole, "V2"}},
		{"grant at a village, facility in another village", "vill", claimReq("submit", "H1", ""), affWant{false, access.ReasonOutOfScope, ""}},
		{"linked but no grant", "portal", claimReq("submit", "H1", ""), affWant{false, access.ReasonNoGrant, ""}},
		{"super admin", "super", claimReq("submit", "H2", ""), affWant{true, access.ReasonSuperAdmin, ""}},
		{"anonymous", "", claimReq("view", "H1", ""), affWant{false, access.ReasonNoGrant, ""}},
		{"gate without a resource", "ca", access.Request{Municipality: "M1", Module: "claims", Action: "submit"}, affWant{true, access.ReasonRole, "M1"}},
		{"gate, linked but no grant", "portal", access.Request{Municipality: "M1", Module: "claims", Action: "submit"}, affWant{false, access.ReasonNoGrant, ""}},
		{"organisation ignored by non-affiliated actions: in place", "ca", access.Request{Module: "equipment", Action: "view", Resource: &access.Resource{LocationID: "V1", OrganisationID: "H2"}}, affWant{true, access.ReasonRole, "M1"}},
		{"organisation ignored by non-affiliated actions: out of place", "ca", access.Request{Module: "equipment", Action: "view", Resource: &access.Resource{LocationID: "M2", OrganisationID: "H2"}}, affWant{false, access.ReasonOutOfScope, ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := w.p.Checker.Check(ctx, access.Subject{UserID: tc.subject}, tc.req)
			require.NoError(t, err)
			assert.Equal(t, tc.want.allowed, d.Allowed, "allowed")
			assert.Equal(t, tc.want.reason, d.Reason, "reason")
			assert.Equal(t, tc.want.domain, d.Domain, "domain")
			if tc.want.allowed && tc.want.reason == access.ReasonRole {
				assert.Equal(t, "claim_admin", d.Role)
			}
		})
	}
}

func TestCheck_AffiliatedBadInputIsATypedDenial(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	for _, org := range []string{"a b", "*", string(make([]byte, 65))} {
		d, err := w.p.Checker.Check(ctx, access.Subject{UserID: "ca"}, claimReq("submit", org, ""))
		assert.ErrorIs(t, err, access.ErrInvalidInput, "%q", org)
		assert.False(t, d.Allowed)
	}
}

func TestCheck_AffiliatedModuleDisabledWhereTheOrganisationIs(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	require.NoError(t, w.p.Admin.SetModuleEnabled(ctx, access.System(), "M1", "claims", false))
	d, err := w.p.Checker.Check(ctx, access.Subject{UserID: "ca"}, claimReq("submit", "H1", ""))
	require.NoError(t, err)
	assert.Equal(t, access.Decision{Reason: access.ReasonModuleDisabled}, d)
	require.NoError(t, w.p.Admin.SetModuleEnabled(ctx, access.System(), "M1", "claims", true))
	d, err = w.p.Checker.Check(ctx, access.Subject{UserID: "ca"}, claimReq("submit", "H1", ""))
	require.NoError(t, err)
	assert.True(t, d.Allowed)
}

func TestCheck_AffiliatedServicesFollowTheOrganisation(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	require.NoError(t, w.p.Affiliations.UpdateServices(ctx, "H3", []string{"claims", "occurrences"}))
	d, err := w.p.Checker.Check(ctx, access.Subject{UserID: "ca"}, claimReq("submit", "H3", ""))
	require.NoError(t, err)
	assert.True(t, d.Allowed, "service added")
	require.NoError(t, w.p.Affiliations.UpdateServices(ctx, "H1", nil))
	d, err = w.p.Checker.Check(ctx, access.Subject{UserID: "ca"}, claimReq("submit", "H1", ""))
	require.NoError(t, err)
	assert.Equal(t, access.ReasonNotAffiliated, d.Reason, "service removed")
}

// TestCheck_LinkWindowFollowsTheInjectedClock walks the clock across the
// window [t0+1h, t0+2h) of ca's link to H4 and checks, at each instant, the
// decision, the store's Members and OrganisationsOf, and a second platform
// opened on the same database with the same clock.
func TestCheck_LinkWindowFollowsTheInjectedClock(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	other, err := townhall.Open(ctx, dbtest.Open(t, w.dsn), townhall.WithKDF(testkit.FastKDF),
		townhall.WithClock(w.clock.Now), townhall.WithRegistry(claimsRegistry(t)))
	require.NoError(t, err)
	defer other.Close()

	steps := []struct {
		name    string
		advance time.Duration // from the previous step
		live    bool
	}{
		{"before the window", 0, false},
		{"one microsecond before it opens", time.Hour - time.Microsecond, false},
		{"when it opens (inclusive)", time.Microsecond, true},
		{"inside", 30 * time.Minute, true},
		{"one microsecond before it closes", 30*time.Minute - time.Microsecond, true},
		{"when it closes (exclusive)", time.Microsecond, false},
		{"after", 24 * time.Hour, false},
	}
	for _, st := range steps {
		w.clock.Advance(st.advance)
		for name, p := range map[string]*townhall.Platform{"this process": w.p, "another process": other} {
			d, err := p.Checker.Check(ctx, access.Subject{UserID: "ca"}, claimReq("submit", "H4", ""))
			require.NoError(t, err)
			assert.Equal(t, st.live, d.Allowed, "%s, %s: %+v", st.name, name, d)
			if !st.live {
				assert.Equal(t, access.ReasonNotAffiliated, d.Reason, "%s, %s", st.name, name)
			}
		}
		members, err := w.p.Affiliations.Members(ctx, "H4")
		require.NoError(t, err)
		var ids []string
		for _, m := range members {
			ids = append(ids, m.UserID)
		}
		assert.Equal(t, st.live, slices.Contains(ids, "ca"), "%s: Members %v", st.name, ids)
		orgs, err := w.p.Affiliations.OrganisationsOf(ctx, "ca")
		require.NoError(t, err)
		var orgIDs []string
		for _, o := range orgs {
			orgIDs = append(orgIDs, o.ID)
		}
		assert.Equal(t, st.live, slices.Contains(orgIDs, "H4"), "%s: OrganisationsOf %v", st.name, orgIDs)
	}
}

// TestCheck_PastLinkRecordsHistoryOnly: a link whose window lies in the
// past is accepted and listed as history, but never makes a user
// affiliated.
func TestCheck_PastLinkRecordsHistoryOnly(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	links, err := w.p.Affiliations.Links(ctx, "past")
	require.NoError(t, err)
	require.Len(t, links, 1)
	assert.Equal(t, "H1", links[0].OrganisationID)
	members, err := w.p.Affiliations.Members(ctx, "H1")
	require.NoError(t, err)
	for _, m := range members {
		assert.NotEqual(t, "past", m.UserID)
	}
	d, err := w.p.Checker.Check(ctx, access.Subject{UserID: "past"}, claimReq("view", "H1", ""))
	require.NoError(t, err)
	assert.Equal(t, access.ReasonNotAffiliated, d.Reason)
}
