package access

import (
	"hash/maphash"

	"github.com/civicstack/townhall/location"
)

// snapshot is everything a decision needs, held in memory so that a check
// never touches the database. A published snapshot is immutable: checks
// load it with one atomic read and never wait for a writer; a writer builds
// the next snapshot by copying the parts it changes (one shard of users,
// the tree, a settings map) and publishes it with one atomic store, so a
// check sees a change entirely or not at all.
type snapshot struct {
	reg  *compiled
	tree *location.Tree // frozen

	users       userTable
	departments map[string]categorySet // department ID → its categories
	// disabled holds, per module, the municipalities where it is disabled;
	// disabledAt the same per municipality index, as a set of module
	// indexes, for the check's single lookup.
	disabled   map[string]map[string]struct{}
	disabledAt map[int32]permSet
	// disabledIn counts, per module index, the live municipalities that
	// disable it; municipalities counts the live municipalities.
	disabledIn     []int
	municipalities int
	// approvalOff holds the municipalities that do not require approval.
	approvalOff map[string]struct{}

	orgs     map[string]*orgState
	links    map[string]map[string][]window // user → organisation → link windows
	sessions sessions                       // live impersonation sessions
}

// userShards splits the users so that a change copies 1/256 of them.
const userShards = 256

// userTable maps user IDs to their state, in shards copied on write.
type userTable struct {
	seed   maphash.Seed
	shards *[userShards]map[string]*userState
}

func newUserTable() userTable {
	var shards [userShards]map[string]*userState
	for i := range shards {
		shards[i] = map[string]*userState{}
	}
	return userTable{seed: maphash.MakeSeed(), shards: &shards}
}

func (t *userTable) shard(id string) int {
	return int(maphash.String(t.seed, id) % userShards)
}

// get returns the state of user id.
func (t *userTable) get(id string) (*userState, bool) {
	u, ok := t.shards[t.shard(id)][id]
	return u, ok
}

// each calls fn for every user until fn returns false.
func (t *userTable) each(fn func(id string, u *userState) bool) {
	for _, m := range t.shards {
		for id, u := range m {
			if !fn(id, u) {
				return
			}
		}
	}
}

// with returns a table in which the users of changes have the given states
// (nil removes), copying only the shards they fall in.
func (t userTable) with(changes map[string]*userState) userTable {
	shards := *t.shards
	copied := map[int]bool{}
	for id, u := range changes {
		i := t.shard(id)
		if !copied[i] {
			m := make(map[string]*userState, len(shards[i])+1)
			for k, v := range shards[i] {
				m[k] = v
			}
			shards[i] = m
			copied[i] = true
		}
		if u == nil {
			delete(shards[i], id)
		} else {
			shards[i][id] = u
		}
	}
	t.shards = &shards
	return t
}

// put adds a user while the table is being built (not yet published).
func (t *userTable) put(id string, u *userState) {
	t.shards[t.shard(id)][id] = u
}

// userState is one user's part of the snapshot. It is built whole on every
// change to the user, its profiles or its grants, and never mutated once
// published.
type userState struct {
	deleted, active, superAdmin, technical bool
	profiles                               []profileRef
	grants                                 []grant // location "*" = platform grant
	// platformPerms is the union of the permissions of the platform grants.
	platformPerms permSet
}

// profileRef is a profile with the location it is at.
type profileRef struct {
	location string
	loc      int32 // tree index, -1 when the location is not in the tree
	p        *profileState
}

// profile returns the user's profile at location id.
func (u *userState) profile(id string) (*profileState, bool) {
	for i := range u.profiles {
		if u.profiles[i].location == id {
			return u.profiles[i].p, true
		}
	}
	return nil, false
}

// grant is one role held at a location (or "*").
type grant struct {
	role     int    // index into compiled.roles
	location string // location ID or "*"
	loc      int32  // tree index of location, -1 for "*" or a location not in the tree
}

type profileState struct {
	approved, active bool
	department       string
	allowed          categorySet
}

// categorySet is a set of categories; nil means "not set" (no restriction
// from this source).
type categorySet map[string]struct{}

func newCategorySet(cats []string) categorySet {
	if len(cats) == 0 {
		return nil
	}
	s := make(categorySet, len(cats))
	for _, c := range cats {
		s[c] = struct{}{}
	}
	return s
}

// allowsCategory reports whether category lies in the profile's effective
// categories (SPEC §1): the intersection of the profile's and the
// department's sets where set, all categories where neither is. A record
// with no category passes only when neither set restricts.
func (s *snapshot) allowsCategory(p *profileState, category string) bool {
	if p.allowed == nil && p.department == "" {
		return true
	}
	dept := s.departments[p.department]
	for _, set := range []categorySet{p.allowed, dept} {
		if set == nil {
			continue
		}
		if _, ok := set[category]; !ok || category == "" {
			return false
		}
	}
	return true
}

// unrestrictedCategories reports whether the profile sees every category.
func (s *snapshot) unrestrictedCategories(p *profileState) bool {
	return p.allowed == nil && s.departments[p.department] == nil
}

// anchor returns the user's profile at the nearest ancestor-or-self of
// location loc, with that location's ID.
func (s *snapshot) anchor(u *userState, loc string) (*profileState, string) {
	i, ok := s.tree.Index(loc)
	if !ok {
		return nil, ""
	}
	p, at := s.anchorAt(u, i)
	if p == nil {
		return nil, ""
	}
	return p, s.tree.IDIndex(at)
}

// anchorAt is anchor on tree indexes: a walk up at most the tree's depth,
// testing the user's few profiles at each step.
func (s *snapshot) anchorAt(u *userState, loc int32) (*profileState, int32) {
	if len(u.profiles) == 0 {
		return nil, -1
	}
	for i := loc; i >= 0; i = s.tree.ParentIndex(i) {
		for k := range u.profiles {
			r := &u.profiles[k]
			// A profile whose location the state was built before (see
			// grantLoc) is matched by ID.
			if r.loc == i || r.loc < 0 && r.location == s.tree.IDIndex(i) {
				return r.p, i
			}
		}
	}
	return nil, -1
}

// moduleEnabled reports whether module is enabled in municipality (always
// for platform modules and for an empty municipality).
func (s *snapshot) moduleEnabled(module, municipality string) bool {
	if municipality == "" {
		return true
	}
	_, off := s.disabled[module][municipality]
	return !off
}

// moduleEnabledAt is moduleEnabled for a municipality's tree index (-1:
// none) and a module index.
func (s *snapshot) moduleEnabledAt(moduleIdx int, muni int32) bool {
	if muni < 0 || len(s.disabledAt) == 0 {
		return true
	}
	set, ok := s.disabledAt[muni]
	return !ok || !set.has(moduleIdx)
}

// enabledEverywhereIdx reports whether no live municipality disables the
// module (settings of deleted municipalities do not count).
func (s *snapshot) enabledEverywhereIdx(moduleIdx int) bool {
	return s.disabledIn[moduleIdx] == 0
}

// enabledSomewhereIdx reports whether some live municipality has the
// module enabled.
func (s *snapshot) enabledSomewhereIdx(moduleIdx int) bool {
	return s.municipalities > s.disabledIn[moduleIdx]
}

// withModuleEnabled returns copies of the module settings with module
// enabled or disabled in municipality.
func (s *snapshot) withModuleEnabled(municipality, module string, enabled bool) {
	disabled := make(map[string]map[string]struct{}, len(s.disabled)+1)
	for m, set := range s.disabled {
		disabled[m] = set
	}
	set := make(map[string]struct{}, len(disabled[module])+1)
	for k := range disabled[module] {
		set[k] = struct{}{}
	}
	if enabled {
		delete(set, municipality)
	} else {
		set[municipality] = struct{}{}
	}
	if len(set) == 0 {
		delete(disabled, module)
	} else {
		disabled[module] = set
	}
	s.disabled = disabled
	s.reindexDisabled()
}

// reindexDisabled rebuilds disabledAt, disabledIn and municipalities from
// disabled and the tree (O(locations): it runs when the tree or a module
// setting changes, never on a check).
func (s *snapshot) reindexDisabled() {
	s.municipalities = 0
	for _, l := range s.tree.Locations() {
		if l.Level == location.Municipality {
			s.municipalities++
		}
	}
	s.disabledIn = make([]int, len(s.reg.modules))
	at := map[int32]permSet{}
	for module, set := range s.disabled {
		mi, ok := s.reg.moduleIx[module]
		if !ok {
			continue
		}
		for muni := range set {
			i, ok := s.tree.Index(muni)
			if !ok {
				continue
			}
			s.disabledIn[mi]++
			ps := at[i]
			if ps == nil {
				ps = newPermSet(len(s.reg.modules))
				at[i] = ps
			}
			ps.add(mi)
		}
	}
	s.disabledAt = at
}

// buildUser finishes a user's state once its rows are read: tree indexes
// of grants and profiles not resolved yet, and the union of its platform
// permissions.
func (s *snapshot) buildUser(u *userState) {
	u.platformPerms = nil
	for i := range u.grants {
		g := &u.grants[i]
		if g.location == "*" {
			g.loc = -1
			if u.platformPerms == nil {
				u.platformPerms = newPermSet(len(s.reg.actions))
			}
			u.platformPerms.union(s.reg.roles[g.role].perms)
			continue
		}
		if g.loc < 0 {
			if i, ok := s.tree.Index(g.location); ok {
				g.loc = i
			}
		}
	}
	for i := range u.profiles {
		if u.profiles[i].loc < 0 {
			if ix, ok := s.tree.Index(u.profiles[i].location); ok {
				u.profiles[i].loc = ix
			}
		}
	}
}
