package access_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// On generated worlds (see filter_diff_test.go), Subjects lists exactly the
// users Check allows with a resource at the location, and Permissions
// exactly the actions Check allows as a gate in the municipality.
func TestLookups_AgreeWithCheck(t *testing.T) {
	for _, seed := range diffSeeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			w := newGenWorld(t, seed)
			ctx := context.Background()
			var userIDs []string
			for _, s := range w.subjects {
				if s.UserID != "" && s.ImpersonatorID == "" && !slices.Contains(userIDs, s.UserID) {
					userIDs = append(userIDs, s.UserID)
				}
			}
			listed, allowedSomewhere := 0, 0
			for _, ma := range w.actions() {
				for _, loc := range append([]string{""}, w.live...) {
					got, err := w.p.Checker.Subjects(ctx, ma[0], ma[1], loc)
					require.NoError(t, err)
					require.True(t, slices.IsSorted(got), "%v at %q: sorted", ma, loc)
					res := &access.Resource{LocationID: loc}
					for _, id := range got {
						d, err := w.p.Checker.Check(ctx, access.Subject{UserID: id}, access.Request{Module: ma[0], Action: ma[1], Resource: res})
						require.NoError(t, err)
						assert.True(t, d.Allowed, "%s listed for %v at %q but Check denies: %s", id, ma, loc, d.Reason)
					}
					for _, id := range userIDs {
						if slices.Contains(got, id) {
							continue
						}
						d, err := w.p.Checker.Check(ctx, access.Subject{UserID: id}, access.Request{Module: ma[0], Action: ma[1], Resource: res})
						require.NoError(t, err)
						assert.False(t, d.Allowed, "%s not listed for %v at %q but Check allows: %s %s@%s", id, ma, loc, d.Reason, d.Role, d.Domain)
					}
					listed += len(got)
				}
			}
			var munis []string
			for _, id := range w.live {
				if l, err := w.p.Locations.Get(ctx, id); err == nil && l.Level == location.Municipality {
					munis = append(munis, id)
				}
			}
			for _, s := range w.subjects {
				for _, muni := range append([]string{""}, munis...) {
					got, err := w.p.Checker.Permissions(ctx, s, muni)
					require.NoError(t, err)
					for _, ma := range w.actions() {
						if muni == "" && !access.IsPlatformModule(ma[0]) {
							continue
						}
						d, err := w.p.Checker.Check(ctx, s, access.Request{Municipality: muni, Module: ma[0], Action: ma[1]})
						require.NoError(t, err)
						assert.Equal(t, d.Allowed, slices.Contains(got, access.ModuleAction{Module: ma[0], Action: ma[1]}),
							"%+v %v in %q: Check says %v (%s)", s, ma, muni, d.Allowed, d.Reason)
						if d.Allowed {
							allowedSomewhere++
						}
					}
				}
			}
			// The worlds must exercise both lists, or the test proves nothing.
			assert.Positive(t, listed)
			assert.Positive(t, allowedSomewhere)
		})
	}
}

func TestSubjects_ListsOnlyWhoMayActThere(t *testing.T) {
	p := testkit.Open(t)
	ctx := context.Background()
	sys := access.System()
	testkit.Locations(t, p,
		location.Location{ID: "R", Level: "region"},
		location.Location{ID: "W", Level: "municipality", ParentID: "R"},
		location.Location{ID: "E", Level: "municipality", ParentID: "R"},
		location.Location{ID: "W1", Level: "village", ParentID: "W"})
	testkit.Member(t, p, "manager_w", "manager", "W")
	testkit.Member(t, p, "manager_e", "manager", "E")
	testkit.Member(t, p, "operator_w", "operator", "W")
	testkit.Member(t, p, "regional", "manager", "R")
	testkit.Member(t, p, "village", "manager", "W1")
	testkit.User(t, p, "root")
	require.NoError(t, p.Admin.SetSuperAdmin(ctx, sys, "root", true))
	testkit.User(t, p, "pa")
	require.NoError(t, p.Admin.Grant(ctx, sys, "pa", "platform_admin", "*"))
	testkit.Member(t, p, "pending", "manager", "W")
	require.NoError(t, p.Admin.SetProfileActive(ctx, sys, "pending", "W", false))

	got, err := p.Checker.Subjects(ctx, "occurrences", "assign", "W")
	require.NoError(t, err)
	// manager_e is elsewhere, operator_w's role does not allow assign,
	// village's grant lies below W, pending's profile is inactive.
	assert.Equal(t, []string{"manager_w", "regional", "root"}, got)

	got, err = p.Checker.Subjects(ctx, "users", "manage", "W")
	require.NoError(t, err)
	assert.Equal(t, []string{"pa", "root"}, got)

	for _, tc := range []struct {
		name                string
		module, action, loc string
		want                error
	}{
		{"unknown module", "nope", "view", "W", access.ErrUnknownModule},
		{"unknown action", "occurrences", "nope", "W", access.ErrUnknownAction},
		{"unknown location", "occurrences", "view", "X", location.ErrNotFound},
		{"malformed location", "occurrences", "view", "a b", access.ErrInvalidInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Checker.Subjects(ctx, tc.module, tc.action, tc.loc)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestSubjects_SeesWritesAtOnce(t *testing.T) {
	p := testkit.Open(t)
	ctx := context.Background()
	testkit.Locations(t, p, location.Location{ID: "R", Level: "region"},
		location.Location{ID: "W", Level: "municipality", ParentID: "R"})
	testkit.Member(t, p, "olga", "operator", "W")
	got, err := p.Checker.Subjects(ctx, "occurrences", "close", "W")
	require.NoError(t, err)
	assert.Empty(t, got)
	require.NoError(t, p.Admin.Grant(ctx, access.System(), "olga", "manager", "W"))
	got, err = p.Checker.Subjects(ctx, "occurrences", "close", "W")
	require.NoError(t, err)
	assert.Equal(t, []string{"olga"}, got)
	testkit.Member(t, p, "max", "manager", "W")
	got, err = p.Checker.Subjects(ctx, "occurrences", "close", "W")
	require.NoError(t, err)
	assert.Equal(t, []string{"max", "olga"}, got)
	require.NoError(t, p.Admin.Revoke(ctx, access.System(), "olga", "manager", "W"))
	require.NoError(t, p.Admin.SetUserActive(ctx, access.System(), "max", false))
	got, err = p.Checker.Subjects(ctx, "occurrences", "close", "W")
	require.NoError(t, err)
	assert.Empty(t, got)
	require.NoError(t, p.Admin.SetSuperAdmin(ctx, access.System(), "max", true))
	require.NoError(t, p.Admin.SetUserActive(ctx, access.System(), "max", true))
	got, err = p.Checker.Subjects(ctx, "users", "manage", "W")
	require.NoError(t, err)
	assert.Equal(t, []string{"max"}, got)
}

func TestPermissions_IsTheMenu(t *testing.T) {
	p := testkit.Open(t)
	ctx := context.Background()
	testkit.Locations(t, p, location.Location{ID: "R", Level: "region"},
		location.Location{ID: "W", Level: "municipality", ParentID: "R"},
		location.Location{ID: "E", Level: "municipality", ParentID: "R"})
	testkit.Member(t, p, "olga", "operator", "W")
	require.NoError(t, p.Admin.SetModuleEnabled(ctx, access.System(), "W", "equipment", false))

	got, err := p.Checker.Permissions(ctx, access.Subject{UserID: "olga"}, "W")
	require.NoError(t, err)
	assert.Equal(t, []access.ModuleAction{
		{"occurrences", "create"}, {"occurrences", "update"}, {"occurrences", "view"}, {"occupancy", "view"},
	}, got)
	got, err = p.Checker.Permissions(ctx, access.Subject{UserID: "olga"}, "E")
	require.NoError(t, err)
	assert.Equal(t, []access.ModuleAction{{"occurrences", "create"}, {"occurrences", "view"}, {"occupancy", "view"}}, got)
	got, err = p.Checker.Permissions(ctx, access.Anonymous(), "E")
	require.NoError(t, err)
	assert.Equal(t, []access.ModuleAction{{"occurrences", "create"}, {"occurrences", "view"}, {"occupancy", "view"}}, got)

	_, err = p.Checker.Permissions(ctx, access.Subject{UserID: "nobody"}, "W")
	assert.ErrorIs(t, err, users.ErrNotFound)
	_, err = p.Checker.Permissions(ctx, access.Subject{UserID: "olga"}, "R")
	assert.ErrorIs(t, err, access.ErrInvalidInput, "a region is not a municipality")
}
