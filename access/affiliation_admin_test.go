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
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/users"
)

// auditEvents returns the events of type typ, oldest first.
func eventsOfType(t *testing.T, p *townhall.Platform, typ string) []audit.Event {
	t.Helper()
	evs, err := p.Audit.Query(context.Background(), audit.Query{Type: typ, Limit: audit.MaxLimit})
	require.NoError(t, err)
	return evs
}

func lastEventOfType(t *testing.T, p *townhall.Platform, typ string) audit.Event {
	t.Helper()
	evs := eventsOfType(t, p, typ)
	require.NotEmpty(t, evs, "no %s event", typ)
	return evs[len(evs)-1]
}

func TestLink_NeedsUsersManageCoveringTheOrganisation(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	sys := access.System()
	testkit.Member(t, w.p, "admin1", access.RoleAdmin, "M1")
	testkit.Member(t, w.p, "mgr1", access.RoleManager, "M1")
	testkit.User(t, w.p, "pat")
	require.NoError(t, w.p.Admin.Grant(ctx, sys, "pat", access.RolePlatformAdmin, "*"))

	cases := []struct {
		actor, org string
		allowed    bool
	}{
		{"admin1", "H1", true},  // H1 lies in M1's subtree
		{"admin1", "H2", false}, // H2 is in M2
		{"mgr1", "H1", false},   // users:view only
		{"ca", "H1", false},     // affiliated itself, but no users:manage
		{"pat", "H2", true},     // platform_admin
		{"super", "H2", true},   // super admin
		{"", "H1", false},       // anonymous
	}
	for _, tc := range cases {
		testkit.User(t, w.p, "new-"+tc.actor+"-"+tc.org)
		uid := "new-" + tc.actor + "-" + tc.org
		actor := access.Subject{UserID: tc.actor}
		err := w.p.Admin.Link(ctx, actor, affiliation.Link{UserID: uid, OrganisationID: tc.org})
		ev := lastEventOfType(t, w.p, audit.TypeLink)
		assert.Equal(t, uid, ev.UserID, "%s links to %s: event", tc.actor, tc.org)
		assert.Equal(t, tc.actor, ev.ActorID)
		require.NotNil(t, ev.Allowed)
		assert.Equal(t, tc.allowed, *ev.Allowed)
		orgs, lerr := w.p.Affiliations.OrganisationsOf(ctx, uid)
		require.NoError(t, lerr)
		if tc.allowed {
			require.NoError(t, err, "%s links to %s", tc.actor, tc.org)
			assert.Len(t, orgs, 1)
		} else {
			assert.ErrorIs(t, err, access.ErrForbidden, "%s links to %s", tc.actor, tc.org)
			assert.Empty(t, orgs, "a refusal changes nothing")
		}
	}

	// The change event names the organisation's location and the window.
	from := w.t0.Add(-time.Hour)
	require.NoError(t, w.p.Admin.Link(ctx, access.Subject{UserID: "admin1"}, affiliation.Link{UserID: "noaff", OrganisationID: "H4", ValidFrom: &from}))
	ev := lastEventOfType(t, w.p, audit.TypeLink)
	assert.Equal(t, "V2", ev.LocationID)
	assert.Equal(t, "H4", ev.Details["organisation"])
	assert.Equal(t, from.UTC().Format(time.RFC3339Nano), ev.Details["valid_from"])
	assert.NotContains(t, ev.Details, "valid_to")
	d, err := w.p.Checker.Check(ctx, access.Subject{UserID: "noaff"}, claimReq("submit", "H4", ""))
	require.NoError(t, err)
	assert.True(t, d.Allowed, "the link is live as soon as Link returns")
}

func TestLink_BadInputIsTypedAndNotAudited(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	sys := access.System()
	before := len(eventsOfType(t, w.p, audit.TypeLink))
	t1 := w.t0.Add(time.Hour)
	cases := []struct {
		name string
		link affiliation.Link
		want []error
	}{
		{"malformed organisation", affiliation.Link{UserID: "noaff", OrganisationID: "H 1"}, []error{access.ErrInvalidInput}},
		{"unknown organisation", affiliation.Link{UserID: "noaff", OrganisationID: "H9"}, []error{affiliation.ErrNotFound}},
		{"malformed user", affiliation.Link{UserID: "", OrganisationID: "H1"}, []error{access.ErrInvalidInput}},
		{"unknown user", affiliation.Link{UserID: "ghost", OrganisationID: "H1"}, []error{users.ErrNotFound}},
		{"window ends before it starts", affiliation.Link{UserID: "noaff", OrganisationID: "H1", ValidFrom: &t1, ValidTo: &w.t0}, []error{access.ErrInvalidInput, affiliation.ErrInvalidInput}},
		{"window overlaps a link of the pair", affiliation.Link{UserID: "ca", OrganisationID: "H4", ValidFrom: &t1}, []error{affiliation.ErrDuplicate}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := w.p.Admin.Link(ctx, sys, tc.link)
			for _, want := range tc.want {
				assert.ErrorIs(t, err, want)
			}
		})
	}
	assert.Len(t, eventsOfType(t, w.p, audit.TypeLink), before, "bad input is not a change")
	_, err := w.p.Checker.Check(ctx, access.Subject{UserID: "noaff"}, claimReq("submit", "H1", ""))
	require.NoError(t, err)
}

func TestUnlink_EndsTheAffiliationAndKeepsHistory(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	testkit.Member(t, w.p, "admin1", access.RoleAdmin, "M1")
	testkit.Member(t, w.p, "admin2", access.RoleAdmin, "M2")
	submit := func(user, org string) access.Decision {
		t.Helper()
		d, err := w.p.Checker.Check(ctx, access.Subject{UserID: user}, claimReq("submit", org, ""))
		require.NoError(t, err)
		return d
	}
	require.True(t, submit("ca", "H1").Allowed)

	err := w.p.Admin.Unlink(ctx, access.Subject{UserID: "admin2"}, "ca", "H1")
	assert.ErrorIs(t, err, access.ErrForbidden)
	ev := lastEventOfType(t, w.p, audit.TypeUnlink)
	assert.Equal(t, "admin2", ev.ActorID)
	assert.False(t, *ev.Allowed)
	assert.True(t, submit("ca", "H1").Allowed, "a refusal changes nothing")

	require.NoError(t, w.p.Admin.Unlink(ctx, access.Subject{UserID: "admin1"}, "ca", "H1"))
	assert.Equal(t, access.ReasonNotAffiliated, submit("ca", "H1").Reason, "unlinked as soon as Unlink returns")
	ev = lastEventOfType(t, w.p, audit.TypeUnlink)
	assert.Equal(t, "admin1", ev.ActorID)
	assert.Equal(t, "ca", ev.UserID)
	assert.Equal(t, "V1", ev.LocationID)
	assert.True(t, *ev.Allowed)
	assert.ErrorIs(t, w.p.Admin.Unlink(ctx, access.System(), "ca", "H1"), affiliation.ErrNotFound, "nothing live or upcoming left")

	// A past link stays as history; the live one goes.
	from := w.t0
	require.NoError(t, w.p.Admin.Link(ctx, access.System(), affiliation.Link{UserID: "past", OrganisationID: "H1", ValidFrom: &from}))
	require.True(t, submit("past", "H1").Allowed)
	require.NoError(t, w.p.Admin.Unlink(ctx, access.System(), "past", "H1"))
	assert.Equal(t, access.ReasonNotAffiliated, submit("past", "H1").Reason)
	links, err := w.p.Affiliations.Links(ctx, "past")
	require.NoError(t, err)
	require.Len(t, links, 1)
	assert.Equal(t, w.t0.Add(-time.Hour), *links[0].ValidTo)

	// Linking again works: links are soft-deleted, never reused.
	require.NoError(t, w.p.Admin.Link(ctx, access.System(), affiliation.Link{UserID: "ca", OrganisationID: "H1"}))
	assert.True(t, submit("ca", "H1").Allowed)
}

func TestDeleteOrganisation_Cascade(t *testing.T) {
	w := newAffWorld(t)
	ctx := context.Background()
	sys := access.System()
	p := w.p
	testkit.Member(t, p, "admin1", access.RoleAdmin, "M1")
	testkit.Member(t, p, "admin2", access.RoleAdmin, "M2")
	later := w.t0.Add(time.Hour)
	before, beforeEnd := w.t0.Add(-2*time.Hour), w.t0.Add(-time.Hour)
	extra := []struct {
		id    string
		links []affiliation.Link
	}{
		{"multi", []affiliation.Link{{OrganisationID: "H1"}, {OrganisationID: "H2"}}},                     // keeps a live link
		{"future", []affiliation.Link{{OrganisationID: "H1"}, {OrganisationID: "H2", ValidFrom: &later}}}, // an upcoming link is not live
		{"sa", []affiliation.Link{{OrganisationID: "H1"}}},
		{"plat", []affiliation.Link{{OrganisationID: "H1"}}},
		{"already", []affiliation.Link{{OrganisationID: "H1"}}},
		{"hist", []affiliation.Link{{OrganisationID: "H1", ValidFrom: &before, ValidTo: &beforeEnd}}}, // was not live
	}
	for _, u := range extra {
		testkit.User(t, p, u.id)
		for _, l := range u.links {
			l.UserID = u.id
			require.NoError(t, p.Admin.Link(ctx, sys, l))
		}
	}
	require.NoError(t, p.Admin.SetSuperAdmin(ctx, sys, "sa", true))
	require.NoError(t, p.Admin.Grant(ctx, sys, "plat", access.RolePlatformAdmin, "*"))
	require.NoError(t, p.Admin.SetUserActive(ctx, sys, "already", false))

	// Bad input and refusals change nothing.
	assert.ErrorIs(t, p.Admin.DeleteOrganisation(ctx, sys, "H 1"), access.ErrInvalidInput)
	assert.ErrorIs(t, p.Admin.DeleteOrganisation(ctx, sys, "H9"), affiliation.ErrNotFound)
	for _, actor := range []string{"admin2", "ca", "portal", ""} {
		err := p.Admin.DeleteOrganisation(ctx, access.Subject{UserID: actor}, "H1")
		assert.ErrorIs(t, err, access.ErrForbidden, "%q", actor)
		ev := lastEventOfType(t, p, audit.TypeOrganisationDeleted)
		assert.Equal(t, actor, ev.ActorID)
		assert.False(t, *ev.Allowed)
	}
	_, err := p.Affiliations.GetOrganisation(ctx, "H1")
	require.NoError(t, err, "refused deletions leave the organisation")
	assert.Empty(t, eventsOfType(t, p, audit.TypeUserActive)[1:], "only the setup's deactivation")

	// admin1 manages M1, where H1 lies.
	require.NoError(t, p.Admin.DeleteOrganisation(ctx, access.Subject{UserID: "admin1"}, "H1"))
	_, err = p.Affiliations.GetOrganisation(ctx, "H1")
	assert.ErrorIs(t, err, affiliation.ErrNotFound)
	members, err := p.Affiliations.Members(ctx, "H1")
	require.NoError(t, err)
	assert.Empty(t, members)
	assert.ErrorIs(t, p.Admin.DeleteOrganisation(ctx, sys, "H1"), affiliation.ErrNotFound, "deleted organisations are unknown")

	deactivated := []string{"future", "inact", "portal"}
	kept := []string{"ca", "cat", "unap", "vill", "multi", "sa", "plat", "hist", "past", "noaff"}
	for _, id := range deactivated {
		u, err := p.Users.Get(ctx, id)
		require.NoError(t, err)
		assert.False(t, u.IsActive, "%s is left with no live link and no active profile", id)
	}
	for _, id := range kept {
		u, err := p.Users.Get(ctx, id)
		require.NoError(t, err)
		assert.True(t, u.IsActive, "%s stays active", id)
	}

	// Audited: the deletion, then one user_active event per deactivated
	// user, all by admin1 in the same transaction.
	del := lastEventOfType(t, p, audit.TypeOrganisationDeleted)
	assert.Equal(t, "admin1", del.ActorID)
	assert.Equal(t, "V1", del.LocationID)
	assert.True(t, *del.Allowed)
	assert.Equal(t, "H1", del.Details["organisation"])
	assert.EqualValues(t, 3, del.Details["deactivated"])
	var got []string
	for _, ev := range eventsOfType(t, p, audit.TypeUserActive) {
		if ev.ActorID != "admin1" {
			continue
		}
		got = append(got, ev.UserID)
		assert.Greater(t, ev.Seq, del.Seq)
		assert.Equal(t, false, ev.Details["value"])
		assert.Equal(t, "H1", ev.Details["organisation"])
		assert.True(t, *ev.Allowed)
	}
	assert.Equal(t, deactivated, got)

	// The snapshot follows at once, and agrees with a fresh process.
	fresh, err := townhall.Open(ctx, dbtest.Open(t, w.dsn), townhall.WithKDF(testkit.FastKDF),
		townhall.WithClock(w.clock.Now), townhall.WithRegistry(claimsRegistry(t)))
	require.NoError(t, err)
	defer fresh.Close()
	reqs := []access.Request{
		{Municipality: "M1", Module: "occurrences", Action: "view"},
		claimReq("submit", "H1", ""), claimReq("submit", "H2", ""), claimReq("submit", "H4", ""),
	}
	for _, id := range append(deactivated, kept...) {
		for _, r := range reqs {
			d, err := p.Checker.Check(ctx, access.Subject{UserID: id}, r)
			require.NoError(t, err)
			df, err := fresh.Checker.Check(ctx, access.Subject{UserID: id}, r)
			require.NoError(t, err)
			assert.Equal(t, df, d, "%s %+v", id, r)
			if slices.Contains(deactivated, id) {
				assert.Equal(t, access.ReasonUserInactive, d.Reason, "%s", id)
			}
			if r.Resource != nil && r.Resource.OrganisationID == "H1" && id != "sa" {
				assert.False(t, d.Allowed, "%s: H1 is gone", id)
			}
		}
	}

	// Reactivation is Admin's to do; the user comes back without links.
	require.NoError(t, p.Admin.SetUserActive(ctx, sys, "portal", true))
	orgs, err := p.Affiliations.OrganisationsOf(ctx, "portal")
	require.NoError(t, err)
	assert.Empty(t, orgs)
}
