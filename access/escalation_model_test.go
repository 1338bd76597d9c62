package access_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// The model-based escalation test: seeded random sequences of Admin calls
// by random actors over a fixed tree, a registry with reserved and
// inheriting roles, categories and organisations, set up with dormant
// grants. After every call it reads the rows (users, locations, profiles,
// grants, organisations, links) and computes every user's effective
// permissions with its own small reference (refPerms below, written from
// SPEC §1-§3 and nothing of the snapshot). A refused or failed call must
// change no permission; an accepted one must give nobody a permission the
// actor could not grant. A failure prints the seed and the shortest
// sequence of calls (found by deleting calls) that still fails.

// modelSequences × modelOps calls run per database; TOWNHALL_MODEL_SEQUENCES
// changes the first.
const (
	modelSequences = 12
	modelOps       = 180
)

var (
	modelLocs = []location.Location{
		{ID: "R1", Level: "region"},
		{ID: "D1", Level: "district", ParentID: "R1"},
		{ID: "D2", Level: "district", ParentID: "R1"},
		{ID: "M1", Level: "municipality", ParentID: "D1"},
		{ID: "M2", Level: "municipality", ParentID: "D1"},
		{ID: "M3", Level: "municipality", ParentID: "D2"},
		{ID: "V1", Level: "village", ParentID: "M1"},
		{ID: "V2", Level: "village", ParentID: "M2"},
		{ID: "V3", Level: "village", ParentID: "M3"},
	}
	modelUsers = []string{"root", "pat", "a1", "a2", "m1", "m2", "o1", "x1", "x2", "x3", "x4"}
	modelRoles = []string{"viewer", "operator", "manager", "admin", "db_creator", "helper", "inspector", "claim_admin"}
	modelCats  = []string{"c1", "c2", "c3"}
	modelOrgs  = []affiliation.Organisation{
		{ID: "hf1", Name: "HF1", Kind: "clinic", LocationID: "M1", Services: []string{"claims"}},
		{ID: "hf2", Name: "HF2", Kind: "clinic", LocationID: "V3", Services: []string{"claims"}},
		{ID: "hf3", Name: "HF3", Kind: "insurer", LocationID: "M2", Services: []string{"occurrences"}},
	}
)

// modelRegistry: the default registry, managers with users:manage, a
// reserved db_creator and a reserved helper inheriting it, an inspector
// inheriting viewer, and an affiliated claims:submit.
func modelRegistry(t testing.TB) *access.Registry {
	reg := access.DefaultRegistry()
	require.NoError(t, reg.AddRole(access.Role{Name: "db_creator", Reserved: true}))
	require.NoError(t, reg.AddRole(access.Role{Name: "helper", Reserved: true, Inherits: []string{"db_creator"}}))
	require.NoError(t, reg.AddRole(access.Role{Name: "inspector", Inherits: []string{"viewer"}}))
	require.NoError(t, reg.AddRole(access.Role{Name: "claim_admin"}))
	require.NoError(t, reg.AddModule("databases", map[string]access.Action{"create": {Roles: []string{"db_creator"}}}))
	require.NoError(t, reg.AddModule("inspections", map[string]access.Action{"file": {Roles: []string{"inspector"}}}))
	require.NoError(t, reg.AddModule("claims", map[string]access.Action{
		"submit": {Roles: []string{"claim_admin"}, Affiliated: true},
		"view":   {Roles: []string{"manager"}, Affiliated: true, ReadOnly: true},
	}))
	require.NoError(t, reg.AddModule(access.ModuleUsers, map[string]access.Action{"manage": {Roles: []string{"manager"}}}))
	return reg
}

// modelOp is one Admin call, fully described so that a sequence replays
// (and shrinks) on a fresh platform.
type modelOp struct {
	Actor, Kind, User, Loc, Role, Org string
	Cats                              []string
	On                                bool
}

func (o modelOp) String() string {
	return fmt.Sprintf("%s by %s: user=%s loc=%s role=%s org=%s cats=%v on=%v", o.Kind, o.Actor, o.User, o.Loc, o.Role, o.Org, o.Cats, o.On)
}

func (o modelOp) run(ctx context.Context, a *access.Admin) error {
	actor := access.Subject{UserID: o.Actor}
	switch o.Kind {
	case "AddMember":
		_, err := a.AddMember(ctx, actor, access.Membership{UserID: o.User, LocationID: o.Loc, Role: o.Role, AllowedCategories: o.Cats})
		return err
	case "Grant":
		return a.Grant(ctx, actor, o.User, o.Role, o.Loc)
	case "Revoke":
		return a.Revoke(ctx, actor, o.User, o.Role, o.Loc)
	case "Approve":
		return a.Approve(ctx, actor, o.User, o.Loc)
	case "SetProfileActive":
		return a.SetProfileActive(ctx, actor, o.User, o.Loc, o.On)
	case "SetApprovalRequired":
		return a.SetApprovalRequired(ctx, actor, o.Loc, o.On)
	case "MoveLocation":
		return a.MoveLocation(ctx, actor, o.User, o.Loc) // User holds the moved location
	case "Link":
		return a.Link(ctx, actor, affiliation.Link{UserID: o.User, OrganisationID: o.Org})
	case "Unlink":
		return a.Unlink(ctx, actor, o.User, o.Org)
	case "SetUserActive":
		return a.SetUserActive(ctx, actor, o.User, o.On)
	}
	return fmt.Errorf("unknown op %q", o.Kind)
}

// genModelOps draws n calls from seed.
func genModelOps(seed uint64, n int) []modelOp {
	rng := rand.New(rand.NewPCG(seed, 13))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	place := func() string { return modelLocs[rng.IntN(len(modelLocs))].ID }
	actors := []string{"pat", "a1", "a1", "a2", "a2", "m1", "m1", "m2", "o1", "x1", "root"}
	moves := [][2]string{{"V1", "M2"}, {"V1", "M1"}, {"V2", "M1"}, {"V2", "M3"}, {"V3", "M1"}, {"V3", "M3"}, {"M3", "D1"}, {"M3", "D2"}, {"M1", "D2"}, {"M1", "D1"}}
	var ops []modelOp
	for range n {
		o := modelOp{Actor: pick(actors), User: pick(modelUsers[2:]), Loc: place(), Role: pick(modelRoles), On: rng.IntN(2) == 0}
		if rng.IntN(3) == 0 {
			for _, c := range modelCats {
				if rng.IntN(2) == 0 {
					o.Cats = append(o.Cats, c)
				}
			}
		}
		switch x := rng.IntN(100); {
		case x < 18:
			o.Kind = "AddMember"
		case x < 36:
			o.Kind = "Grant"
		case x < 44:
			o.Kind = "Revoke"
		case x < 56:
			o.Kind = "Approve"
		case x < 66:
			o.Kind = "SetProfileActive"
		case x < 74:
			o.Kind = "SetApprovalRequired"
			o.Loc = pick([]string{"M1", "M2", "M3"})
		case x < 82:
			o.Kind = "MoveLocation"
			m := moves[rng.IntN(len(moves))]
			o.User, o.Loc = m[0], m[1]
		case x < 90:
			o.Kind, o.Org = "Link", modelOrgs[rng.IntN(len(modelOrgs))].ID
		case x < 95:
			o.Kind, o.Org = "Unlink", modelOrgs[rng.IntN(len(modelOrgs))].ID
		default:
			o.Kind = "SetUserActive"
		}
		ops = append(ops, o)
	}
	return ops
}

// modelSetup builds the starting world of seed with System: the tree,
// users, organisations, memberships (some unapproved, inactive or
// restricted to categories) and dormant grants that no profile anchors.
func modelSetup(t testing.TB, seed uint64) *townhall.Platform {
	ctx := context.Background()
	sys := access.System()
	p := testkit.Open(t, townhall.WithRegistry(modelRegistry(t)), townhall.WithSyncInterval(-1))
	testkit.Locations(t, p, modelLocs...)
	for _, u := range modelUsers {
		testkit.User(t, p, u)
	}
	for _, o := range modelOrgs {
		_, err := p.Affiliations.CreateOrganisation(ctx, o)
		require.NoError(t, err)
	}
	require.NoError(t, p.Admin.SetSuperAdmin(ctx, sys, "root", true))
	require.NoError(t, p.Admin.Grant(ctx, sys, "pat", access.RolePlatformAdmin, "*"))
	member := func(u, loc, role string, cats ...string) {
		_, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: u, LocationID: loc, Role: role, AllowedCategories: cats})
		require.NoError(t, err)
		require.NoError(t, p.Admin.Approve(ctx, sys, u, loc))
	}
	member("a1", "M1", "admin")
	member("a2", "D2", "admin", "c1")
	member("m1", "M1", "manager")
	member("m2", "M2", "manager", "c2")
	member("o1", "V1", "operator")
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, u := range []string{"x1", "x2", "x3", "x4"} {
		for _, loc := range []string{"D1", "M1", "M2", "M3", "V1"} {
			if rng.IntN(3) > 0 {
				continue
			}
			var cats []string
			if rng.IntN(2) == 0 {
				cats = []string{modelCats[rng.IntN(3)]}
			}
			_, err := p.Admin.AddMember(ctx, sys, access.Membership{UserID: u, LocationID: loc, Role: modelRoles[rng.IntN(len(modelRoles))], AllowedCategories: cats})
			require.NoError(t, err)
			if rng.IntN(2) == 0 {
				require.NoError(t, p.Admin.Approve(ctx, sys, u, loc))
			}
			if rng.IntN(4) == 0 {
				require.NoError(t, p.Admin.SetProfileActive(ctx, sys, u, loc, false))
			}
		}
		for range 2 {
			testkit.Grant(t, p, u, modelRoles[rng.IntN(len(modelRoles))], modelLocs[rng.IntN(len(modelLocs))].ID)
		}
	}
	return p
}

// refWorld is what the reference reads from the rows.
type refWorld struct {
	active, super map[string]bool
	parent        map[string]string // live locations
	profiles      map[string]map[string]refProfile
	grants        map[string][][2]string // user → (role, location)
	orgs          map[string]affiliation.Organisation
	links         map[string]map[string]bool // live links
}

type refProfile struct {
	approved, active bool
	cats             []string // nil: all
}

func readRefWorld(t testing.TB, p *townhall.Platform) *refWorld {
	db := p.DB()
	w := &refWorld{active: map[string]bool{}, super: map[string]bool{}, parent: map[string]string{},
		profiles: map[string]map[string]refProfile{}, grants: map[string][][2]string{},
		orgs: map[string]affiliation.Organisation{}, links: map[string]map[string]bool{}}
	var us []struct {
		ID, Kind             string
		IsActive, SuperAdmin bool
	}
	require.NoError(t, db.Raw("SELECT id, kind, is_active, is_super_admin AS super_admin FROM "+users.UsersTable+" WHERE deleted_at IS NULL").Scan(&us).Error)
	for _, u := range us {
		w.active[u.ID], w.super[u.ID] = u.IsActive, u.SuperAdmin && u.Kind == string(users.Interactive)
	}
	var locs []struct{ ID, ParentID string }
	require.NoError(t, db.Raw("SELECT id, COALESCE(parent_id, '') AS parent_id FROM "+location.LocationsTable+" WHERE deleted_at IS NULL").Scan(&locs).Error)
	for _, l := range locs {
		w.parent[l.ID] = l.ParentID
	}
	var ps []struct {
		UserID, LocationID, AllowedCategories string
		IsApproved, IsActive                  bool
	}
	require.NoError(t, db.Raw("SELECT user_id, location_id, COALESCE(allowed_categories, '') AS allowed_categories, is_approved, is_active FROM "+
		users.ProfilesTable+" WHERE deleted_at IS NULL").Scan(&ps).Error)
	for _, r := range ps {
		rp := refProfile{approved: r.IsApproved, active: r.IsActive}
		if r.AllowedCategories != "" {
			require.NoError(t, json.Unmarshal([]byte(r.AllowedCategories), &rp.cats))
			if len(rp.cats) == 0 {
				rp.cats = nil
			}
		}
		if w.profiles[r.UserID] == nil {
			w.profiles[r.UserID] = map[string]refProfile{}
		}
		w.profiles[r.UserID][r.LocationID] = rp
	}
	gs, err := policy.AllGrants(context.Background(), db)
	require.NoError(t, err)
	for _, g := range gs {
		w.grants[g.UserID] = append(w.grants[g.UserID], [2]string{g.Role, g.Domain})
	}
	var os []struct{ ID, LocationID, Services string }
	require.NoError(t, db.Raw("SELECT id, location_id, services FROM "+affiliation.OrganisationsTable+" WHERE deleted_at IS NULL").Scan(&os).Error)
	for _, o := range os {
		org := affiliation.Organisation{ID: o.ID, LocationID: o.LocationID}
		require.NoError(t, json.Unmarshal([]byte(o.Services), &org.Services))
		w.orgs[o.ID] = org
	}
	var ls []struct{ UserID, OrganisationID string }
	require.NoError(t, db.Raw("SELECT user_id, organisation_id FROM "+affiliation.LinksTable+" WHERE deleted_at IS NULL").Scan(&ls).Error)
	for _, l := range ls {
		if w.links[l.UserID] == nil {
			w.links[l.UserID] = map[string]bool{}
		}
		w.links[l.UserID][l.OrganisationID] = true
	}
	return w
}

// within reports whether live location x lies in the subtree of y.
func (w *refWorld) within(x, y string) bool {
	for i := 0; x != "" && i < 64; i++ {
		if x == y {
			return true
		}
		x = w.parent[x]
	}
	return false
}

// anchor is u's profile at the nearest ancestor-or-self of loc.
func (w *refWorld) anchor(u, loc string) (refProfile, bool) {
	for i := 0; loc != "" && i < 64; i++ {
		if p, ok := w.profiles[u][loc]; ok {
			return p, true
		}
		loc = w.parent[loc]
	}
	return refProfile{}, false
}

// refRegistry answers, from the registry's public declarations, which
// roles allow which actions (lists, the staff alias, inheritance, the
// admin and viewer rules) and which actions are reserved.
type refRegistry struct {
	reg     *access.Registry
	actions [][2]string
	table   map[[3]string]bool // (role, module, action) → allows, memoised
	res     map[[2]string]bool // (module, action) → reserved, memoised
}

func newRefRegistry(reg *access.Registry) *refRegistry {
	r := &refRegistry{reg: reg, table: map[[3]string]bool{}, res: map[[2]string]bool{}}
	for _, m := range reg.Modules() {
		for _, a := range reg.Actions(m) {
			r.actions = append(r.actions, [2]string{m, a})
			r.res[[2]string{m, a}] = r.listsReserved(m, a)
		}
	}
	for _, role := range reg.Roles() {
		for _, ma := range r.actions {
			r.table[[3]string{role.Name, ma[0], ma[1]}] = r.derive(role.Name, ma[0], ma[1])
		}
	}
	return r
}

func (r *refRegistry) reserved(m, a string) bool { return r.res[[2]string{m, a}] }

// allows reports whether role allows module:action.
func (r *refRegistry) allows(role, m, a string) bool {
	if role == access.RoleStaff {
		role = access.RoleOperator
	}
	return r.table[[3]string{role, m, a}]
}

func (r *refRegistry) listsReserved(m, a string) bool {
	act, _ := r.reg.Action(m, a)
	for _, role := range act.Roles {
		if def, err := r.reg.Role(role); err == nil && def.Reserved {
			return true
		}
	}
	return false
}

// derive computes allows from the declarations.
func (r *refRegistry) derive(role, m, a string) bool {
	act, err := r.reg.Action(m, a)
	if err != nil {
		return false
	}
	for _, listed := range act.Roles {
		if listed == role || listed == access.RoleStaff && role == access.RoleOperator {
			return true
		}
	}
	platformModule := access.IsPlatformModule(m)
	if role == access.RoleAdmin && !platformModule && !r.listsReserved(m, a) {
		return true
	}
	if role == access.RoleViewer && !platformModule && act.ReadOnly {
		return true
	}
	def, err := r.reg.Role(role)
	if err != nil {
		return false
	}
	for _, parent := range def.Inherits {
		if r.derive(parent, m, a) {
			return true
		}
	}
	return false
}

// refPerm is one permission: an action at a location, or for affiliated
// actions also at an organisation, for a category ("" a record with none).
type refPerm struct {
	module, action, loc, org, cat string
	gate                          bool // any category will do (a gate, as users:manage)
}

// refHolds reports whether user u may use perm, counted as if every module
// were enabled (SPEC §2 steps 3-8 without enablement).
func (w *refWorld) refHolds(r *refRegistry, u string, perm refPerm) bool {
	if !w.active[u] {
		return false
	}
	if w.super[u] {
		return true
	}
	loc := perm.loc
	if perm.org != "" {
		org, ok := w.orgs[perm.org]
		if !ok || !slices.Contains(org.Services, perm.module) || !w.links[u][perm.org] {
			return false
		}
		loc = org.LocationID
	}
	if _, live := w.parent[loc]; !live {
		return false
	}
	for _, g := range w.grants[u] {
		if !r.allows(g[0], perm.module, perm.action) {
			continue
		}
		if g[1] == policy.PlatformDomain {
			return true
		}
		if !w.within(loc, g[1]) {
			continue
		}
		p, ok := w.anchor(u, g[1])
		if !ok || !p.active || !p.approved {
			continue
		}
		if perm.gate || p.cats == nil || perm.cat != "" && slices.Contains(p.cats, perm.cat) {
			return true
		}
	}
	return false
}

// refPlatform reports whether u holds module:action through a platform
// grant.
func (w *refWorld) refPlatform(r *refRegistry, u, m, a string) bool {
	if !w.active[u] {
		return false
	}
	for _, g := range w.grants[u] {
		if g[1] == policy.PlatformDomain && r.allows(g[0], m, a) {
			return true
		}
	}
	return false
}

// universe lists every permission the reference compares.
func (r *refRegistry) universe() []refPerm {
	var out []refPerm
	for _, ma := range r.actions {
		act, _ := r.reg.Action(ma[0], ma[1])
		for _, l := range modelLocs {
			for _, c := range append([]string{""}, modelCats...) {
				out = append(out, refPerm{module: ma[0], action: ma[1], loc: l.ID, cat: c})
				if act.Affiliated {
					for _, o := range modelOrgs {
						if l.ID == modelLocs[0].ID { // one organisation entry per category
							out = append(out, refPerm{module: ma[0], action: ma[1], org: o.ID, cat: c})
						}
					}
				}
			}
		}
	}
	return out
}

// mayGive is the reference "could grant" of SPEC §3 for actor (as before
// shows them) and a permission user u gains.
func (r *refRegistry) mayGive(before, after *refWorld, actor, u string, perm refPerm) error {
	if before.active[actor] && before.super[actor] {
		return nil
	}
	switch {
	case after.super[u] && !before.super[u]:
		return errors.New("makes a super admin")
	case r.reserved(perm.module, perm.action):
		return errors.New("a reserved permission")
	case after.refPlatform(r, u, perm.module, perm.action) && !before.refPlatform(r, u, perm.module, perm.action):
		return errors.New("a platform role's permission")
	}
	for _, g := range before.grants[actor] {
		if g[0] == access.RolePlatformAdmin && g[1] == policy.PlatformDomain && before.active[actor] {
			return nil
		}
	}
	loc := perm.loc
	if perm.org != "" {
		loc = before.orgs[perm.org].LocationID
	}
	if !before.refHolds(r, actor, refPerm{module: access.ModuleUsers, action: "manage", loc: loc, gate: true}) {
		return fmt.Errorf("no users:manage at %s", loc)
	}
	if !before.refHolds(r, actor, refPerm{module: perm.module, action: perm.action, loc: loc, cat: perm.cat}) {
		return fmt.Errorf("not the actor's own at %s", loc)
	}
	return nil
}

// runModel replays ops on a fresh world of seed and returns the index of
// the first op that breaks the rule, with what it broke (-1: none).
func runModel(t testing.TB, seed uint64, ops []modelOp) (int, string) {
	ctx := context.Background()
	p := modelSetup(t, seed)
	r := newRefRegistry(modelRegistry(t))
	universe := r.universe()
	before := readRefWorld(t, p)
	for i, op := range ops {
		err := op.run(ctx, p.Admin)
		after := readRefWorld(t, p)
		for _, u := range modelUsers {
			for _, perm := range universe {
				if !after.refHolds(r, u, perm) || before.refHolds(r, u, perm) {
					continue
				}
				if err != nil {
					return i, fmt.Sprintf("%s gained %+v from a call that failed (%v)", u, perm, err)
				}
				if why := r.mayGive(before, after, op.Actor, u, perm); why != nil {
					return i, fmt.Sprintf("%s gained %+v, which %s could not grant: %v", u, perm, op.Actor, why)
				}
			}
		}
		before = after
	}
	return -1, ""
}

// TestEscalation_ModelBased runs the sequences four at a time (each on its
// own platform and database: they wait on the database far more than on
// the CPU).
func TestEscalation_ModelBased(t *testing.T) {
	sequences := modelSequences
	if s, err := strconv.Atoi(os.Getenv("TOWNHALL_MODEL_SEQUENCES")); err == nil && s > 0 {
		sequences = s
	}
	ops := testkit.Seeds(t, "seed", 20261202, sequences, 4, checkModelSequence)
	t.Logf("%d sequences, %d Admin calls", sequences, ops)
}

// checkModelSequence runs the sequence of seed and, when it breaks the
// rule, fails with the shortest sequence that still does. It returns how
// many calls it ran.
func checkModelSequence(t *testing.T, seed uint64) int {
	seq := genModelOps(seed, modelOps)
	bad, why := runModel(t, seed, seq)
	if bad < 0 {
		return len(seq)
	}
	// Shrink: drop every call the failure does not need.
	seq = seq[:bad+1]
	for i := len(seq) - 2; i >= 0; i-- {
		shorter := slices.Delete(slices.Clone(seq), i, i+1)
		if b, w := runModel(t, seed, shorter); b >= 0 {
			seq, why = shorter[:b+1], w
			if i > len(seq)-1 {
				i = len(seq) - 1
			}
		}
	}
	var lines []string
	for _, op := range seq {
		lines = append(lines, "  "+op.String())
	}
	t.Fatalf("seed %d: %s\nshortest sequence (%d calls after the setup):\n%s", seed, why, len(seq), strings.Join(lines, "\n"))
	return 0
}
