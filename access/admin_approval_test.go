package access_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// TestAddMember_ApprovalFollowsTheMunicipality: a profile at or below a
// municipality starts unapproved unless that municipality switched approval
// off; above the municipality level it always starts unapproved. The
// setting binds only new profiles, is visible at once and survives a fresh
// load.
func TestAddMember_ApprovalFollowsTheMunicipality(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, nil)
	e.tree(t)
	testkit.Locations(t, e.p, location.Location{ID: "V2", Level: "village", ParentID: "M2"})
	testkit.Member(t, e.p, "madmin", access.RoleAdmin, "M2")
	madmin := access.Subject{UserID: "madmin"}
	n := 0
	add := func(t *testing.T, actor access.Subject, loc string) (string, *users.Profile) {
		t.Helper()
		n++
		id := fmt.Sprintf("u%d", n)
		testkit.User(t, e.p, id)
		p, err := e.p.Admin.AddMember(ctx, actor, access.Membership{UserID: id, LocationID: loc, Role: access.RoleOperator})
		require.NoError(t, err)
		return id, p
	}

	muni := map[string]string{"M1": "M1", "V1": "M1", "M2": "M2", "V2": "M2", "D": "M1", "R": "M1"}
	for _, loc := range []string{"M1", "V1", "M2", "V2", "D", "R"} {
		id, p := add(t, sys, loc)
		assert.False(t, p.IsApproved, "%s requires approval by default", loc)
		assert.Equal(t, access.ReasonProfileNotApproved, e.allowed(t, access.Subject{UserID: id}, probe(access.RoleOperator, muni[loc])).Reason, loc)
	}

	seq := e.mark(t)
	ev := e.assertApplied(t, e.p.Admin.SetApprovalRequired(ctx, madmin, "M2", false), seq, audit.TypeApprovalRequired, "madmin")
	assert.Equal(t, "M2", ev.LocationID)
	for _, loc := range []string{"M2", "V2", "M1", "V1", "D", "R"} {
		id, p := add(t, sys, loc)
		approved := muni[loc] == "M2" && loc != "D" && loc != "R"
		assert.Equal(t, approved, p.IsApproved, loc)
		if approved {
			assert.True(t, e.allowed(t, access.Subject{UserID: id}, probe(access.RoleOperator, "M2")).Allowed,
				"an approved membership works at once")
		}
	}
	approvedEarlier := fmt.Sprintf("u%d", n-5) // the one at M2

	t.Run("a fresh load keeps the setting", func(t *testing.T) {
		fresh, err := townhall.Open(ctx, dbtest.Open(t, e.dsn), townhall.WithKDF(testkit.FastKDF))
		require.NoError(t, err)
		defer fresh.Close()
		testkit.User(t, fresh, "viafresh")
		p, err := fresh.Admin.AddMember(ctx, sys, access.Membership{UserID: "viafresh", LocationID: "V2", Role: access.RoleViewer})
		require.NoError(t, err)
		assert.True(t, p.IsApproved)
	})

	require.NoError(t, e.p.Admin.SetApprovalRequired(ctx, madmin, "M2", true))
	_, p := add(t, madmin, "M2")
	assert.False(t, p.IsApproved, "approval is required again")
	profiles, err := e.p.Profiles.ListForUser(ctx, approvedEarlier)
	require.NoError(t, err)
	require.Len(t, profiles, 1)
	assert.True(t, profiles[0].IsApproved, "existing profiles keep their approval")

	t.Run("approve is idempotent and audited each time", func(t *testing.T) {
		id, _ := add(t, madmin, "M2")
		for range 2 {
			seq := e.mark(t)
			ev := e.assertApplied(t, e.p.Admin.Approve(ctx, madmin, id, "M2"), seq, audit.TypeApprove, "madmin")
			assert.Equal(t, id, ev.UserID)
			assert.True(t, e.allowed(t, access.Subject{UserID: id}, probe(access.RoleOperator, "M2")).Allowed)
		}
	})
	t.Run("a deactivated profile keeps its grants and works again", func(t *testing.T) {
		id, _ := add(t, madmin, "M2")
		require.NoError(t, e.p.Admin.Approve(ctx, madmin, id, "M2"))
		require.NoError(t, e.p.Admin.SetProfileActive(ctx, madmin, id, "M2", false))
		assert.Equal(t, access.ReasonProfileInactive, e.allowed(t, access.Subject{UserID: id}, probe(access.RoleOperator, "M2")).Reason)
		assert.True(t, e.hasGrant(t, id, access.RoleOperator, "M2"))
		require.NoError(t, e.p.Admin.SetProfileActive(ctx, madmin, id, "M2", true))
		assert.True(t, e.allowed(t, access.Subject{UserID: id}, probe(access.RoleOperator, "M2")).Allowed)
	})
}

// TestAddMember_CategoriesWithinTheActorsOwn: the effective categories of
// a new membership (profile list, department, or their intersection) must
// lie within the actor's own effective categories there; unrestricted
// actors, platform admins and System give any.
func TestAddMember_CategoriesWithinTheActorsOwn(t *testing.T) {
	ctx := context.Background()
	sys := access.System()
	e := openAdmin(t, nil)
	e.tree(t)
	e.platformAdmin(t, "pat")
	for _, d := range []users.Department{
		{ID: "water", MunicipalityID: "M1", Name: "Water", Categories: []string{"water"}},
		{ID: "parks", MunicipalityID: "M1", Name: "Parks", Categories: []string{"parks"}},
	} {
		_, err := e.p.Profiles.CreateDepartment(ctx, d)
		require.NoError(t, err)
	}
	member := func(id string, m access.Membership) {
		testkit.User(t, e.p, id)
		m.UserID, m.LocationID, m.Role = id, "M1", access.RoleAdmin
		_, err := e.p.Admin.AddMember(ctx, sys, m)
		require.NoError(t, err)
		require.NoError(t, e.p.Admin.Approve(ctx, sys, id, "M1"))
	}
	member("cadmin", access.Membership{AllowedCategories: []string{"roads", "water"}})
	member("dadmin", access.Membership{DepartmentID: "water"})
	member("uadmin", access.Membership{})

	cases := []struct {
		actor, dept string
		cats        []string
		want        bool
	}{
		{"cadmin", "", []string{"roads"}, true},
		{"cadmin", "", []string{"roads", "water"}, true},
		{"cadmin", "", []string{"roads", "parks"}, false},
		{"cadmin", "", nil, false}, // every category
		{"cadmin", "water", nil, true},
		{"cadmin", "parks", nil, false},
		{"cadmin", "water", []string{"roads"}, true}, // empty intersection: none
		{"cadmin", "water", []string{"water", "parks"}, true},
		{"dadmin", "", []string{"water"}, true},
		{"dadmin", "", []string{"roads"}, false},
		{"dadmin", "", nil, false},
		{"uadmin", "", nil, true},
		{"uadmin", "parks", []string{"parks", "x"}, true},
		{"pat", "", nil, true},
		{"system", "", nil, true},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s/%v", tc.actor, tc.dept, tc.cats), func(t *testing.T) {
			actor := access.Subject{UserID: tc.actor}
			if tc.actor == "system" {
				actor = sys
			}
			id := fmt.Sprintf("c%d", i)
			testkit.User(t, e.p, id)
			before, seq := e.fingerprint(t), e.mark(t)
			_, err := e.p.Admin.AddMember(ctx, actor, access.Membership{
				UserID: id, LocationID: "M1", Role: access.RoleViewer, DepartmentID: tc.dept, AllowedCategories: tc.cats,
			})
			if tc.want {
				e.assertApplied(t, err, seq, audit.TypeMemberAdded, auditActor(actor))
			} else {
				e.assertRefused(t, err, before, seq, audit.TypeMemberAdded, auditActor(actor))
			}
		})
	}
}
