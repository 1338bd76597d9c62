package access_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	gormadapter "github.com/casbin/gorm-adapter/v3"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// TestCheck_AgreesWithCasbin uses Casbin as the reference for the role-level
// part of Check: on generated registries, trees and grants, with every
// profile active and approved and every module enabled, Check with a
// resource at each location allows exactly when a Casbin enforcer over the
// same casbin_rule rows (CasbinModel, with a domain matching function "the
// request's location lies in the grant's subtree") does.
//
// What Casbin cannot express is tested elsewhere: the gate that also counts
// grants below the municipality (TestCheck_DecisionOrder, "gate: grant below
// municipality"), anchor profiles, approval and activity (profile cases of
// TestCheck_DecisionOrder), categories (the category cases there and the
// filter differential test), module enablement (module_disabled cases and
// TestUserCanAccessModule_AllMunicipalitiesDisabled), public and
// authenticated actions, super admins, affiliations and impersonation.
func TestCheck_AgreesWithCasbin(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { casbinReference(t, seed) })
	}
}

func casbinReference(t *testing.T, seed uint64) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 99))
	reg := access.DefaultRegistry()
	require.NoError(t, reg.AddRole(access.Role{Name: "inspector", Inherits: []string{"viewer"}}))
	require.NoError(t, reg.AddRole(access.Role{Name: "lead", Inherits: []string{"inspector", "operator"}}))
	require.NoError(t, reg.AddRole(access.Role{Name: "auditor", Platform: true}))
	roles := []string{"admin", "manager", "operator", "viewer", "inspector", "lead"}
	inspections := map[string]access.Action{}
	for i := range 4 {
		var listed []string
		for _, r := range roles {
			if rng.IntN(3) == 0 {
				listed = append(listed, r)
			}
		}
		if len(listed) == 0 {
			listed = []string{"lead"}
		}
		inspections[fmt.Sprint("a", i)] = access.Action{Roles: listed, ReadOnly: rng.IntN(2) == 0}
	}
	require.NoError(t, reg.AddModule("inspections", inspections))
	require.NoError(t, reg.AddModule("audit", map[string]access.Action{"view": {Roles: []string{"auditor"}}}))

	p := testkit.Open(t, townhall.WithRegistry(reg), townhall.WithSyncInterval(-1))
	var locs []string
	add := func(id, level, parent string) {
		testkit.Locations(t, p, location.Location{ID: id, Level: level, ParentID: parent})
		locs = append(locs, id)
	}
	for r := range 2 {
		rid := fmt.Sprintf("r%d", r)
		add(rid, "region", "")
		for d := range 2 {
			did := fmt.Sprintf("%s.d%d", rid, d)
			add(did, "district", rid)
			for m := range 2 {
				mid := fmt.Sprintf("%s.m%d", did, m)
				add(mid, "municipality", did)
				add(mid+".v0", "village", mid)
			}
		}
	}
	sys := access.System()
	var users []string
	for i := range 12 {
		id := fmt.Sprintf("u%d", i)
		testkit.User(t, p, id)
		users = append(users, id)
		for range 1 + rng.IntN(3) {
			loc := locs[rng.IntN(len(locs))]
			role := roles[rng.IntN(len(roles))]
			// A profile at the grant's own location anchors it.
			if _, err := p.Profiles.Get(ctx, id, loc); err != nil {
				_, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: id, LocationID: loc, Role: role})
				require.NoError(t, err)
				require.NoError(t, p.Admin.Approve(ctx, sys, id, loc))
			} else {
				require.NoError(t, p.Admin.Grant(ctx, sys, id, role, loc))
			}
		}
		if rng.IntN(4) == 0 {
			platform := []string{"platform_admin", "auditor"}[rng.IntN(2)]
			require.NoError(t, p.Admin.Grant(ctx, sys, id, platform, "*"))
		}
	}

	m, err := model.NewModelFromString(access.CasbinModel())
	require.NoError(t, err)
	db := p.DB()
	gormadapter.TurnOffAutoMigrate(db)
	adapter, err := gormadapter.NewAdapterByDBUseTableName(db, "", "casbin_rule")
	require.NoError(t, err)
	e, err := casbin.NewEnforcer(m, adapter)
	require.NoError(t, err)
	within := func(a, b string) bool { return b == "*" || treeWithin(p, a, b) }
	require.True(t, e.AddNamedDomainMatchingFunc("g", "within", within))
	require.NoError(t, e.LoadPolicy())

	compared, allowed := 0, 0
	for _, u := range users {
		for _, module := range reg.Modules() {
			for _, action := range reg.Actions(module) {
				act, err := reg.Action(module, action)
				require.NoError(t, err)
				if slices.Contains(act.Roles, access.RolePublic) || slices.Contains(act.Roles, access.RoleAuthenticated) {
					continue
				}
				for _, loc := range locs {
					d, err := p.Checker.Check(ctx, access.Subject{UserID: u}, access.Request{
						Module: module, Action: action, Resource: &access.Resource{LocationID: loc},
					})
					require.NoError(t, err)
					want, err := e.Enforce(access.CasbinSubject(u), loc, module, action)
					require.NoError(t, err)
					require.Equal(t, want, d.Allowed, "%s %s.%s at %s: check %+v", u, module, action, loc, d)
					compared++
					if want {
						allowed++
					}
				}
			}
		}
	}
	require.Greater(t, compared, 1000)
	require.Positive(t, allowed, "some requests are allowed")
	require.Less(t, allowed, compared, "some are denied")
}

// treeWithin reports whether location a lies in b's subtree, from the
// database (the reference must not lean on the checker's own tree).
func treeWithin(p *townhall.Platform, a, b string) bool {
	ok, err := p.Locations.IsWithin(context.Background(), a, b)
	return err == nil && ok
}
