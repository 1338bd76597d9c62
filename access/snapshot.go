package access

import (
	"hash/maphash"
	"maps"
	"slices"
	"unique"

	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// snapshot is everything a decision needs, held in memory so that a check
// never touches the database. A published snapshot is immutable: checks
// load it with one atomic read and never wait for a writer; a writer builds
// the next snapshot by copying the parts it changes (one shard of users,
// the tree, a settings map) and publishes it with one atomic store, so a
// check sees a change entirely or not at all.
type snapshot struct {
	// epoch counts the changes that took names from indexes: a user removed
	// from the table, a location removed, the tree reloaded (auditcode.go).
	epoch uint32

	reg  *compiled
	tree *location.Tree // frozen; set with setTree
	view location.View  // tree's view, for the check path

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

// setTree makes t, frozen, the snapshot's tree.
func (s *snapshot) setTree(t *location.Tree) {
	s.tree = t.Freeze()
	s.view = s.tree.View()
}

// userShards splits the users so that a change copies 1/256 of them.
const userShards = 256

// userTable maps user IDs to their state, in shards copied on write, and
// gives every user a dense index (its Principal handle) that stays the same
// for the checker's lifetime: by index, users sit in chunks of chunkSize,
// also copied on write. A table is immutable once published.
type userTable struct {
	seed   maphash.Seed
	shards *[userShards]*idShard // ID → dense index
	dense  []*userChunk          // index >> chunkBits → chunk
	next   uint32                // the next unused index
	// pending holds the users whose state is pending (userState.isPending),
	// to build again when locations are added; copied on write.
	pending map[string]struct{}
}

const (
	chunkBits = 8
	chunkSize = 1 << chunkBits
)

type userChunk [chunkSize]*userState

func newUserTable() userTable {
	var shards [userShards]*idShard
	for i := range shards {
		shards[i] = &idShard{}
	}
	return userTable{seed: maphash.MakeSeed(), shards: &shards}
}

func (t *userTable) hash(id string) uint64 { return maphash.String(t.seed, id) }

// get returns the state of user id.
func (t *userTable) get(id string) (*userState, bool) {
	h := t.hash(id)
	ix, ok := t.shards[h%userShards].find(id, h, t.at)
	if !ok {
		return nil, false
	}
	u := t.at(ix)
	return u, u != nil
}

// at returns the state of the user of dense index i, nil when there is none
// (any more).
func (t *userTable) at(i uint32) *userState {
	if c := i >> chunkBits; uint(c) < uint(len(t.dense)) {
		return t.dense[c][i&(chunkSize-1)]
	}
	return nil
}

// each calls fn for every user, in index order, until fn returns false.
func (t *userTable) each(fn func(id string, u *userState) bool) {
	for _, chunk := range t.dense {
		for _, u := range chunk {
			if u != nil && !fn(u.id, u) {
				return
			}
		}
	}
}

// with returns a table in which the users of changes have the given states
// (nil removes), copying only the shards and chunks they fall in. A user
// already in the table keeps its index; a new one gets the next.
func (t userTable) with(changes map[string]*userState) userTable {
	shards := *t.shards
	t.dense = slices.Clone(t.dense)
	copied := map[uint64]bool{}
	copiedChunk := map[uint32]bool{}
	dropped := map[uint32]bool{}
	pendingCopied := false
	for id, u := range changes {
		if _, was := t.pending[id]; was != (u != nil && u.isPending()) {
			if !pendingCopied {
				t.pending, pendingCopied = maps.Clone(t.pending), true
				if t.pending == nil {
					t.pending = map[string]struct{}{}
				}
			}
			if was {
				delete(t.pending, id)
			} else {
				t.pending[id] = struct{}{}
			}
		}
		h := t.hash(id)
		si := h % userShards
		ix, had := shards[si].find(id, h, t.at)
		switch {
		case had:
			if u == nil {
				dropped[ix] = true
				if !copied[si] {
					shards[si], copied[si] = shards[si].rebuilt(0, nil), true
				}
			}
		case u == nil:
			continue
		default:
			ix = t.next
			t.next++
			if !copied[si] || shards[si].full() {
				shards[si], copied[si] = shards[si].rebuilt(1, nil), true
			}
			shards[si].insert(id, h, ix)
		}
		if u != nil {
			u.id, u.idx = id, ix // u is not published yet
		}
		c := ix >> chunkBits
		for uint(c) >= uint(len(t.dense)) {
			t.dense = append(t.dense, &userChunk{})
			copiedChunk[uint32(len(t.dense)-1)] = true
		}
		if !copiedChunk[c] {
			chunk := *t.dense[c]
			t.dense[c] = &chunk
			copiedChunk[c] = true
		}
		t.dense[c][ix&(chunkSize-1)] = u
	}
	if len(dropped) > 0 {
		for si := range copied {
			shards[si] = shards[si].rebuilt(0, func(ix uint32) bool { return dropped[ix] })
		}
	}
	t.shards = &shards
	return t
}

// setUsers gives the users of changes the given states (nil removes): see
// userTable.with. Removing a user starts a new epoch.
func (s *snapshot) setUsers(changes map[string]*userState) {
	for id, u := range changes {
		if _, had := s.users.get(id); had && u == nil {
			s.epoch++
			break
		}
	}
	s.users = s.users.with(changes)
}

// put adds a user while the table is being built (not yet published),
// with its index in prev when prev holds it.
func (t *userTable) put(id string, u *userState, prev *userTable) {
	ix := t.next
	if prev != nil {
		if old, ok := prev.get(id); ok {
			ix = old.idx
		}
	}
	if ix >= t.next {
		t.next = ix + 1
	}
	u.id, u.idx = id, ix
	h := t.hash(id)
	si := h % userShards
	if t.shards[si].full() {
		t.shards[si] = t.shards[si].rebuilt(1, nil)
	}
	t.shards[si].insert(id, h, ix)
	c := ix >> chunkBits
	for uint(c) >= uint(len(t.dense)) {
		t.dense = append(t.dense, &userChunk{})
	}
	t.dense[c][ix&(chunkSize-1)] = u
}

// userState is one user's part of the snapshot, 96 bytes. It is built
// whole on every change to the user, its profiles or its grants, and never
// mutated once published. The fields a check reads come first, so that for
// most users a check touches the record's first cache lines and nothing
// else of it.
type userState struct {
	idx                                    uint32 // dense index (userTable)
	deleted, active, superAdmin, technical bool
	// grants are the user's grants, in one compact form that the check
	// path, Admin, explain and export all read: a location grant with an
	// anchor profile carries that profile's flags (grant.counts). For most
	// users the array is inline.
	grants []grant
	inline [2]grant
	// rare holds what most users lack (platform grants, locations the tree
	// does not hold): nil for them.
	rare *userRare

	id       string
	profiles []profileRef
}

// userRare is the part of a userState most users do not need.
type userRare struct {
	// platformPerms is the union of the permissions of the platform
	// grants, nil without any.
	platformPerms permSet
	// unknown names the locations of grants and profiles that the tree
	// does not hold (yet), by index (see locOf). A user with one is
	// pending: its state is built again when locations are added.
	unknown []string
}

// hasPlatform reports whether a platform grant of u gives action index ai.
func (u *userState) hasPlatform(ai int) bool {
	return u.rare != nil && u.rare.platformPerms != nil && u.rare.platformPerms.has(ai)
}

// hasPlatformGrant reports whether u holds a platform grant.
func (u *userState) hasPlatformGrant() bool { return u.rare != nil && u.rare.platformPerms != nil }

// rareOf returns u.rare, creating it. u must not be published yet, nor
// its rare part shared with a published record.
func (u *userState) rareOf() *userRare {
	if u.rare == nil {
		u.rare = &userRare{}
	}
	return u.rare
}

// Location indexes of grants and profiles: a tree index (live, or of a
// location removed since), platformLoc for a platform grant ("*"), or, at
// firstUnknownLoc and below, a location the tree does not hold, named in
// userState.unknown. Records hold these indexes, never the IDs: a million
// grants cost no string each.
const (
	platformLoc     int32 = -1
	firstUnknownLoc int32 = -2
)

// grant is one role held at a location (or "*"), 8 bytes. buildUser
// resolves its anchor profile (SPEC §1: the nearest profile at the grant's
// location or above it); a location grant that has one counts, with that
// profile's flags.
type grant struct {
	loc    int32  // location index (see platformLoc)
	role   uint16 // index into compiled.roles
	flags  uint8  // grantCounts; failNotApproved, failInactive of the anchor; openCategories
	anchor uint8  // index of the anchor profile in userState.profiles, anchorFar past 254
}

// platform reports whether g is a platform grant ("*").
func (g *grant) platform() bool { return g.loc == platformLoc }

// isPending reports whether a grant or profile of u names a location the
// tree does not hold.
func (u *userState) isPending() bool { return u.rare != nil && u.rare.unknown != nil }

// locOf returns the location ID that index loc stands for in u's records
// (see platformLoc), read from s's tree: a record's tree index names the
// same location in every later snapshot, since tree changes never reuse
// an index and a full reload builds every record again.
func (s *snapshot) locOf(u *userState, loc int32) string {
	switch {
	case loc >= 0:
		return s.view.NameIndex(loc)
	case loc == platformLoc:
		return policy.PlatformDomain
	}
	return u.rare.unknown[firstUnknownLoc-loc]
}

// grantAt returns the location ID of g, a grant of u ("*" for a platform
// grant).
func (s *snapshot) grantAt(u *userState, g *grant) string { return s.locOf(u, g.loc) }

// nameUnknown returns the location index standing for id, a location the
// tree does not hold, in u's unknown names, adding it when new. u must not
// be published yet, nor its unknown list shared with a published record.
func (u *userState) nameUnknown(id string) int32 {
	r := u.rareOf()
	for i, n := range r.unknown {
		if n == id {
			return firstUnknownLoc - int32(i)
		}
	}
	r.unknown = append(r.unknown, id)
	return firstUnknownLoc - int32(len(r.unknown)-1)
}

// locIndex returns the location index of id for a record of u being
// built: its tree index in tree, or else an unknown name of u.
func (u *userState) locIndex(tree *location.Tree, id string) int32 {
	if i, ok := tree.Index(id); ok {
		return i
	}
	return u.nameUnknown(id)
}

const (
	// grantCounts marks a location grant with an anchor profile: the
	// grants the check path reads.
	grantCounts = 1 << 6
	// openCategories marks a counted grant whose anchor profile restricts
	// no category by itself or through a department.
	openCategories = 1 << 7
	// anchorFar is grant.anchor for an anchor profile whose index does not
	// fit a byte (a user with hundreds of profiles): it is found again.
	anchorFar = 255
)

// addGrant appends g to u's grants, in u's inline array while it has room;
// unknown, when not empty, is g's location, which the tree does not hold.
// u must not be published yet.
func (u *userState) addGrant(g grant, unknown string) {
	if unknown != "" {
		g.loc = u.nameUnknown(unknown)
	}
	if u.grants == nil {
		u.grants = u.inline[:0]
	}
	u.grants = append(u.grants, g)
}

// addProfile appends r to u's profiles; unknown, when not empty, is r's
// location, which the tree does not hold. u must not be published yet.
func (u *userState) addProfile(r profileRef, unknown string) {
	if unknown != "" {
		r.p.loc = u.nameUnknown(unknown)
	}
	u.profiles = append(u.profiles, r)
}

// counts reports whether g is a location grant with an anchor profile.
func (g *grant) counts() bool { return g.flags&grantCounts != 0 }

// fails returns the denial flags of g's anchor profile.
func (g *grant) fails() int { return int(g.flags) & (failNotApproved | failInactive) }

// allowsCategory reports whether category lies in the effective
// categories of g's anchor profile.
func (g *grant) allowsCategory(s *snapshot, u *userState, category string) bool {
	if g.flags&openCategories != 0 {
		return true
	}
	k := int(g.anchor)
	if k == anchorFar {
		k, _ = s.anchorRef(u, g.loc)
	}
	_, ok := u.profiles[k].eff[category]
	return ok
}

// profileRef is a profile with its effective categories, 32 bytes (one
// allocation class below what a department ID and a separate location
// field would take); the profile's state is held by value (never shared
// between records).
type profileRef struct {
	p profileState
	// eff is p's effective categories when they are not all (nil: none),
	// set by buildUser.
	eff categorySet
}

// profile returns u's profile at location id.
func (s *snapshot) profile(u *userState, id string) (*profileState, bool) {
	for i := range u.profiles {
		if s.locOf(u, u.profiles[i].p.loc) == id {
			return &u.profiles[i].p, true
		}
	}
	return nil, false
}

// profileState is a profile as decisions read it, 24 bytes.
type profileState struct {
	department deptRef
	allowed    categorySet
	// loc is the profile's location index (see platformLoc; never
	// platformLoc), set for the profiles of a userState only; it sits
	// here, in what would be padding, to keep profileRef at 32 bytes.
	loc              int32
	approved, active bool
}

// deptRef names a profile's department, interned: 8 bytes per profile
// where the ID would take 16 and a copy of its bytes. The zero value is
// no department.
type deptRef struct{ h unique.Handle[string] }

func deptOf(id string) deptRef {
	if id == "" {
		return deptRef{}
	}
	return deptRef{unique.Make(id)}
}

// id returns the department's ID, "" for none.
func (d deptRef) id() string {
	if d == (deptRef{}) {
		return ""
	}
	return d.h.Value()
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

// effectiveCategories returns the profile's effective categories (SPEC
// §1), as users.EffectiveCategories defines them: all, or cats (sorted,
// none for an empty intersection). A record with no category lies in
// them only when all is true. It is the one definition checks, filters
// and Admin use; checks read it precomputed (profileRef.eff).
func (s *snapshot) effectiveCategories(p *profileState) (cats []string, all bool) {
	dept := s.departments[p.department.id()]
	if p.allowed == nil && dept == nil {
		return nil, true
	}
	cats, all = users.EffectiveCategories(users.Profile{AllowedCategories: setKeys(p.allowed)},
		&users.Department{Categories: setKeys(dept)})
	return slices.DeleteFunc(cats, func(c string) bool { return c == "" }), all
}

func setKeys(set categorySet) []string {
	if set == nil {
		return nil
	}
	return slices.Collect(maps.Keys(set))
}

// unrestrictedCategories reports whether the profile sees every category.
func (s *snapshot) unrestrictedCategories(p *profileState) bool {
	_, all := s.effectiveCategories(p)
	return all
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

// anchorAt is anchor on tree indexes.
func (s *snapshot) anchorAt(u *userState, loc int32) (*profileState, int32) {
	k, at := s.anchorRef(u, loc)
	if k < 0 {
		return nil, -1
	}
	return &u.profiles[k].p, at
}

// anchorRef returns the index in u.profiles of the anchor profile of
// location loc (-1 when there is none) and its location: a walk up at most
// the tree's depth, testing the user's few profiles at each step.
func (s *snapshot) anchorRef(u *userState, loc int32) (int, int32) {
	if len(u.profiles) == 0 {
		return -1, -1
	}
	for i := loc; i >= 0; i = s.view.ParentIndex(i) {
		for k := range u.profiles {
			// A profile at a location the tree did not hold when the state
			// was built (see buildUser) is matched by ID.
			if r := u.profiles[k].p.loc; r == i || r <= firstUnknownLoc && s.locOf(u, r) == s.view.IDIndex(i) {
				return k, i
			}
		}
	}
	return -1, -1
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
// of grants and profiles not resolved yet, the union of its platform
// permissions and the counted grants of the check path. The state must not
// be published yet.
func (s *snapshot) buildUser(u *userState) {
	// The unknown names are read from the list u was built with and kept
	// in a new one: that list may be a published record's.
	var unknown []string
	if u.rare != nil {
		unknown = u.rare.unknown
	}
	name := func(loc int32) string { return unknown[firstUnknownLoc-loc] }
	u.rare = nil
	// The rows were appended one by one: keep no spare capacity.
	u.profiles = fitted(u.profiles)
	if len(u.grants) > len(u.inline) {
		u.grants = fitted(u.grants)
	}
	for i := range u.profiles {
		r := &u.profiles[i]
		r.eff = nil
		if cats, all := s.effectiveCategories(&r.p); !all {
			r.eff = newCategorySet(cats)
		}
		if r.p.loc <= firstUnknownLoc {
			r.p.loc = u.locIndex(s.tree, name(r.p.loc))
		}
	}
	for i := range u.grants {
		g := &u.grants[i]
		g.flags, g.anchor = 0, 0
		if g.platform() {
			r := u.rareOf()
			if r.platformPerms == nil {
				r.platformPerms = newPermSet(len(s.reg.actions))
			}
			r.platformPerms.union(s.reg.roles[g.role].perms)
			continue
		}
		if g.loc <= firstUnknownLoc {
			if g.loc = u.locIndex(s.tree, name(g.loc)); g.loc < 0 {
				continue // counts for nothing until the location is known
			}
		}
		k, _ := s.anchorRef(u, g.loc)
		if k < 0 {
			continue // a grant without an anchor profile counts for nothing
		}
		p := &u.profiles[k].p
		g.flags = grantCounts
		if !p.approved {
			g.flags |= failNotApproved
		}
		if !p.active {
			g.flags |= failInactive
		}
		if _, all := s.effectiveCategories(p); all {
			g.flags |= openCategories
		}
		g.anchor = uint8(min(k, anchorFar))
	}
}

// rebuilt returns a copy of u built again against s (after a change of the
// tree): u itself is published and stays as it is.
func (s *snapshot) rebuilt(u *userState) *userState {
	c := *u
	c.profiles = slices.Clone(u.profiles)
	c.grants = append(c.inline[:0:len(c.inline)], u.grants...)
	s.buildUser(&c)
	return &c
}

// fitted returns s, or a copy of it without spare capacity when it has
// some (a record lives as long as its snapshot).
func fitted[T any](s []T) []T {
	if cap(s) == len(s) {
		return s
	}
	return slices.Clone(s)
}
