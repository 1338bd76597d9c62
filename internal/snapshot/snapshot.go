package snapshot

import (
	"hash/maphash"
	"maps"
	"slices"
	"unique"

	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// Snapshot is everything a decision needs, held in memory so that a check
// never touches the database. A published snapshot is immutable: checks
// load it with one atomic read and never wait for a writer; a writer builds
// the next snapshot by copying the parts it changes (one shard of users,
// the tree, a settings map) and publishes it with one atomic store, so a
// check sees a change entirely or not at all.
type Snapshot struct {
	// Epoch counts the changes that took names from indexes: a user removed
	// from the table, a location removed, the tree reloaded (access/auditcode.go).
	Epoch uint32

	Reg  *Compiled
	Tree *location.Tree // frozen; set with setTree
	View location.View  // tree's view, for the check path

	Users       UserTable
	Departments map[string]CategorySet // department ID → its categories
	// Disabled holds, per module, the municipalities where it is disabled;
	// disabledAt the same per municipality index, as a set of module
	// indexes, for the check's single lookup.
	Disabled   map[string]map[string]struct{}
	disabledAt map[int32]PermSet
	// disabledIn counts, per module index, the live municipalities that
	// disable it; municipalities counts the live municipalities.
	disabledIn     []int
	Municipalities int
	// ApprovalOff holds the municipalities that do not require approval.
	ApprovalOff map[string]struct{}

	Orgs     map[string]*orgState
	Links    map[string]map[string][]Window // user → organisation → link windows
	Sessions Sessions                       // live impersonation sessions
}

// setTree makes t, frozen, the snapshot's tree.
func (s *Snapshot) setTree(t *location.Tree) {
	s.Tree = t.Freeze()
	s.View = s.Tree.View()
}

// userShards splits the users so that a change copies 1/256 of them.
const userShards = 256

// UserTable maps user IDs to their state, in shards copied on write, and
// gives every user a dense index (its Principal handle) that stays the same
// for the checker's lifetime: by index, users sit in chunks of chunkSize,
// also copied on write. A table is immutable once published.
type UserTable struct {
	seed   maphash.Seed
	shards *[userShards]*idShard // ID → dense index
	Dense  []*UserChunk          // index >> chunkBits → chunk
	Next   uint32                // the next unused index
	// pending holds the users whose state is pending (UserState.isPending),
	// to build again when locations are added; copied on write.
	pending map[string]struct{}
}

const (
	chunkBits = 8
	chunkSize = 1 << chunkBits
)

// UserChunk holds the users of chunkSize consecutive indexes.
type UserChunk [chunkSize]*UserState

// newUserTable returns an empty table.
func newUserTable() UserTable {
	var shards [userShards]*idShard
	for i := range shards {
		shards[i] = &idShard{}
	}
	return UserTable{seed: maphash.MakeSeed(), shards: &shards}
}

// Hash is the table's hash of a user ID.
func (t *UserTable) Hash(id string) uint64 { return maphash.String(t.seed, id) }

// Get returns the state of user id.
func (t *UserTable) Get(id string) (*UserState, bool) {
	h := t.Hash(id)
	ix, ok := t.shards[h%userShards].Find(id, h, t.At)
	if !ok {
		return nil, false
	}
	u := t.At(ix)
	return u, u != nil
}

// At returns the state of the user of dense index i, nil when there is none
// (any more).
func (t *UserTable) At(i uint32) *UserState {
	if c := i >> chunkBits; uint(c) < uint(len(t.Dense)) {
		return t.Dense[c][i&(chunkSize-1)]
	}
	return nil
}

// Each calls fn for every user, in index order, until fn returns false.
func (t *UserTable) Each(fn func(id string, u *UserState) bool) {
	for _, chunk := range t.Dense {
		for _, u := range chunk {
			if u != nil && !fn(u.ID, u) {
				return
			}
		}
	}
}

// With returns a table in which the users of changes have the given states
// (nil removes), copying only the shards and chunks they fall in. A user
// already in the table keeps its index; a new one gets the next.
func (t UserTable) With(changes map[string]*UserState) UserTable {
	shards := *t.shards
	t.Dense = slices.Clone(t.Dense)
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
		h := t.Hash(id)
		si := h % userShards
		ix, had := shards[si].Find(id, h, t.At)
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
			ix = t.Next
			t.Next++
			if !copied[si] || shards[si].full() {
				shards[si], copied[si] = shards[si].rebuilt(1, nil), true
			}
			shards[si].Insert(id, h, ix)
		}
		if u != nil {
			u.ID, u.Idx = id, ix // u is not published yet
		}
		c := ix >> chunkBits
		for uint(c) >= uint(len(t.Dense)) {
			t.Dense = append(t.Dense, &UserChunk{})
			copiedChunk[uint32(len(t.Dense)-1)] = true
		}
		if !copiedChunk[c] {
			chunk := *t.Dense[c]
			t.Dense[c] = &chunk
			copiedChunk[c] = true
		}
		t.Dense[c][ix&(chunkSize-1)] = u
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
// UserTable.With. Removing a user starts a new epoch.
func (s *Snapshot) setUsers(changes map[string]*UserState) {
	for id, u := range changes {
		if _, had := s.Users.Get(id); had && u == nil {
			s.Epoch++
			break
		}
	}
	s.Users = s.Users.With(changes)
}

// put adds a user while the table is being built (not yet published),
// with its index in prev when prev holds it.
func (t *UserTable) put(id string, u *UserState, prev *UserTable) {
	ix := t.Next
	if prev != nil {
		if old, ok := prev.Get(id); ok {
			ix = old.Idx
		}
	}
	if ix >= t.Next {
		t.Next = ix + 1
	}
	u.ID, u.Idx = id, ix
	h := t.Hash(id)
	si := h % userShards
	if t.shards[si].full() {
		t.shards[si] = t.shards[si].rebuilt(1, nil)
	}
	t.shards[si].Insert(id, h, ix)
	c := ix >> chunkBits
	for uint(c) >= uint(len(t.Dense)) {
		t.Dense = append(t.Dense, &UserChunk{})
	}
	t.Dense[c][ix&(chunkSize-1)] = u
}

// UserState is one user's part of the snapshot, 96 bytes. It is built
// whole on every change to the user, its profiles or its grants, and never
// mutated once published. The fields a check reads come first, so that for
// most users a check touches the record's first cache lines and nothing
// else of it.
type UserState struct {
	Idx                                    uint32 // dense index (UserTable)
	Deleted, Active, SuperAdmin, Technical bool
	// Grants are the user's grants, in one compact form that the check
	// path, Admin, explain and export all read: a location grant with an
	// anchor profile carries that profile's flags (grant.counts). For most
	// users the array is inline.
	Grants []Grant
	inline [2]Grant
	// rare holds what most users lack (platform grants, locations the tree
	// does not hold): nil for them.
	rare *userRare

	ID       string
	Profiles []profileRef
}

// userRare is the part of a UserState most users do not need.
type userRare struct {
	// platformPerms is the union of the permissions of the platform
	// grants, nil without any.
	platformPerms PermSet
	// Unknown names the locations of grants and profiles that the tree
	// does not hold (yet), by index (see LocOf). A user with one is
	// pending: its state is built again when locations are added.
	Unknown []string
}

// HasPlatform reports whether a platform grant of u gives action index ai.
func (u *UserState) HasPlatform(ai int) bool {
	return u.rare != nil && u.rare.platformPerms != nil && u.rare.platformPerms.Has(ai)
}

// HasPlatformGrant reports whether u holds a platform grant.
func (u *UserState) HasPlatformGrant() bool { return u.rare != nil && u.rare.platformPerms != nil }

// rareOf returns u.rare, creating it. u must not be published yet, nor
// its rare part shared with a published record.
func (u *UserState) rareOf() *userRare {
	if u.rare == nil {
		u.rare = &userRare{}
	}
	return u.rare
}

// Location indexes of grants and profiles: a tree index (live, or of a
// location removed since), platformLoc for a platform grant ("*"), or, at
// firstUnknownLoc and below, a location the tree does not hold, named in
// userRare.Unknown. Records hold these indexes, never the IDs: a million
// grants cost no string each.
const (
	platformLoc     int32 = -1
	firstUnknownLoc int32 = -2
)

// Denial flags in reporting order (SPEC §2 step 9).
const (
	FailNotAffiliated = 1 << iota
	FailCategory
	FailOutOfScope
	failNotApproved
	failInactive
)

// Grant is one role held at a location (or "*"), 8 bytes. BuildUser
// resolves its anchor profile (SPEC §1: the nearest profile at the grant's
// location or above it); a location grant that has one counts, with that
// profile's flags.
type Grant struct {
	Loc    int32  // location index (see platformLoc)
	Role   uint16 // index into Compiled.Roles
	Flags  uint8  // grantCounts; failNotApproved, failInactive of the anchor; openCategories
	Anchor uint8  // index of the anchor profile in UserState.Profiles, anchorFar past 254
}

// Platform reports whether g is a platform grant ("*").
func (g *Grant) Platform() bool { return g.Loc == platformLoc }

// isPending reports whether a grant or profile of u names a location the
// tree does not hold.
func (u *UserState) isPending() bool { return u.rare != nil && u.rare.Unknown != nil }

// HoldsWithin reports whether u has a profile or grant inside id's subtree.
func (u *UserState) HoldsWithin(snap *Snapshot, id string) bool {
	for _, pr := range u.Profiles {
		if snap.Tree.IsWithin(snap.LocOf(u, pr.P.Loc), id) {
			return true
		}
	}
	for _, g := range u.Grants {
		if !g.Platform() && snap.Tree.IsWithin(snap.GrantAt(u, &g), id) {
			return true
		}
	}
	return false
}

// LocOf returns the location ID that index loc stands for in u's records
// (see platformLoc), read from s's tree: a record's tree index names the
// same location in every later snapshot, since tree changes never reuse
// an index and a full reload builds every record again.
func (s *Snapshot) LocOf(u *UserState, loc int32) string {
	switch {
	case loc >= 0:
		return s.View.NameIndex(loc)
	case loc == platformLoc:
		return policy.PlatformDomain
	}
	return u.rare.Unknown[firstUnknownLoc-loc]
}

// GrantAt returns the location ID of g, a grant of u ("*" for a platform
// grant).
func (s *Snapshot) GrantAt(u *UserState, g *Grant) string { return s.LocOf(u, g.Loc) }

// nameUnknown returns the location index standing for id, a location the
// tree does not hold, in u's unknown names, adding it when new. u must not
// be published yet, nor its unknown list shared with a published record.
func (u *UserState) nameUnknown(id string) int32 {
	r := u.rareOf()
	for i, n := range r.Unknown {
		if n == id {
			return firstUnknownLoc - int32(i)
		}
	}
	r.Unknown = append(r.Unknown, id)
	return firstUnknownLoc - int32(len(r.Unknown)-1)
}

// locIndex returns the location index of id for a record of u being
// built: its tree index in tree, or else an unknown name of u.
func (u *UserState) locIndex(tree *location.Tree, id string) int32 {
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
func (u *UserState) addGrant(g Grant, unknown string) {
	if unknown != "" {
		g.Loc = u.nameUnknown(unknown)
	}
	if u.Grants == nil {
		u.Grants = u.inline[:0]
	}
	u.Grants = append(u.Grants, g)
}

// addProfile appends r to u's profiles; unknown, when not empty, is r's
// location, which the tree does not hold. u must not be published yet.
func (u *UserState) addProfile(r profileRef, unknown string) {
	if unknown != "" {
		r.P.Loc = u.nameUnknown(unknown)
	}
	u.Profiles = append(u.Profiles, r)
}

// Counts reports whether g is a location grant with an anchor profile.
func (g *Grant) Counts() bool { return g.Flags&grantCounts != 0 }

// Fails returns the denial flags of g's anchor profile.
func (g *Grant) Fails() int { return int(g.Flags) & (failNotApproved | failInactive) }

// AllowsCategory reports whether category lies in the effective
// categories of g's anchor profile.
func (g *Grant) AllowsCategory(s *Snapshot, u *UserState, category string) bool {
	if g.Flags&openCategories != 0 {
		return true
	}
	k := int(g.Anchor)
	if k == anchorFar {
		k, _ = s.AnchorRef(u, g.Loc)
	}
	_, ok := u.Profiles[k].eff[category]
	return ok
}

// profileRef is a profile with its effective categories, 32 bytes (one
// allocation class below what a department ID and a separate location
// field would take); the profile's state is held by value (never shared
// between records).
type profileRef struct {
	P ProfileState
	// eff is p's effective categories when they are not all (nil: none),
	// set by BuildUser.
	eff CategorySet
}

// Profile returns u's profile at location id.
func (s *Snapshot) Profile(u *UserState, id string) (*ProfileState, bool) {
	for i := range u.Profiles {
		if s.LocOf(u, u.Profiles[i].P.Loc) == id {
			return &u.Profiles[i].P, true
		}
	}
	return nil, false
}

// ProfileState is a profile as decisions read it, 24 bytes.
type ProfileState struct {
	Department deptRef
	Allowed    CategorySet
	// Loc is the profile's location index (see platformLoc; never
	// platformLoc), set for the profiles of a UserState only; it sits
	// here, in what would be padding, to keep profileRef at 32 bytes.
	Loc              int32
	Approved, Active bool
}

// deptRef names a profile's department, interned: 8 bytes per profile
// where the ID would take 16 and a copy of its bytes. The zero value is
// no department.
type deptRef struct{ H unique.Handle[string] }

// DeptOf returns the reference of department id ("" for none).
func DeptOf(id string) deptRef {
	if id == "" {
		return deptRef{}
	}
	return deptRef{unique.Make(id)}
}

// ID returns the department's ID, "" for none.
func (d deptRef) ID() string {
	if d == (deptRef{}) {
		return ""
	}
	return d.H.Value()
}

// CategorySet is a set of categories; nil means "not set" (no restriction
// from this source).
type CategorySet map[string]struct{}

// NewCategorySet returns the set of cats, nil when there are none.
func NewCategorySet(cats []string) CategorySet {
	if len(cats) == 0 {
		return nil
	}
	s := make(CategorySet, len(cats))
	for _, c := range cats {
		s[c] = struct{}{}
	}
	return s
}

// EffectiveCategories returns the profile's effective categories (SPEC
// §1), as users.EffectiveCategories defines them: all, or cats (sorted,
// none for an empty intersection). A record with no category lies in
// them only when all is true. It is the one definition checks, filters
// and Admin use; checks read it precomputed (profileRef.eff).
func (s *Snapshot) EffectiveCategories(p *ProfileState) (cats []string, all bool) {
	dept := s.Departments[p.Department.ID()]
	if p.Allowed == nil && dept == nil {
		return nil, true
	}
	cats, all = users.EffectiveCategories(users.Profile{AllowedCategories: setKeys(p.Allowed)},
		&users.Department{Categories: setKeys(dept)})
	return slices.DeleteFunc(cats, func(c string) bool { return c == "" }), all
}

// setKeys returns the categories of set, unsorted.
func setKeys(set CategorySet) []string {
	if set == nil {
		return nil
	}
	return slices.Collect(maps.Keys(set))
}

// UnrestrictedCategories reports whether the profile sees every category.
func (s *Snapshot) UnrestrictedCategories(p *ProfileState) bool {
	_, all := s.EffectiveCategories(p)
	return all
}

// Anchor returns the user's profile at the nearest ancestor-or-self of
// location loc, with that location's ID.
func (s *Snapshot) Anchor(u *UserState, loc string) (*ProfileState, string) {
	i, ok := s.Tree.Index(loc)
	if !ok {
		return nil, ""
	}
	p, at := s.AnchorAt(u, i)
	if p == nil {
		return nil, ""
	}
	return p, s.Tree.IDIndex(at)
}

// AnchorAt is anchor on tree indexes.
func (s *Snapshot) AnchorAt(u *UserState, loc int32) (*ProfileState, int32) {
	k, at := s.AnchorRef(u, loc)
	if k < 0 {
		return nil, -1
	}
	return &u.Profiles[k].P, at
}

// AnchorRef returns the index in u.profiles of the anchor profile of
// location loc (-1 when there is none) and its location: a walk up at most
// the tree's depth, testing the user's few profiles at each step.
func (s *Snapshot) AnchorRef(u *UserState, loc int32) (int, int32) {
	if len(u.Profiles) == 0 {
		return -1, -1
	}
	for i := loc; i >= 0; i = s.View.ParentIndex(i) {
		for k := range u.Profiles {
			// A profile at a location the tree did not hold when the state
			// was built (see BuildUser) is matched by ID.
			if r := u.Profiles[k].P.Loc; r == i || r <= firstUnknownLoc && s.LocOf(u, r) == s.View.IDIndex(i) {
				return k, i
			}
		}
	}
	return -1, -1
}

// ModuleEnabled reports whether module is enabled in municipality (always
// for platform modules and for an empty municipality).
func (s *Snapshot) ModuleEnabled(module, municipality string) bool {
	if municipality == "" {
		return true
	}
	_, off := s.Disabled[module][municipality]
	return !off
}

// ModuleEnabledAt is ModuleEnabled for a municipality's tree index (-1:
// none) and a module index.
func (s *Snapshot) ModuleEnabledAt(moduleIdx int, muni int32) bool {
	if muni < 0 || len(s.disabledAt) == 0 {
		return true
	}
	set, ok := s.disabledAt[muni]
	return !ok || !set.Has(moduleIdx)
}

// EnabledEverywhereIdx reports whether no live municipality disables the
// module (settings of deleted municipalities do not count).
func (s *Snapshot) EnabledEverywhereIdx(moduleIdx int) bool {
	return s.disabledIn[moduleIdx] == 0
}

// EnabledSomewhereIdx reports whether some live municipality has the
// module enabled.
func (s *Snapshot) EnabledSomewhereIdx(moduleIdx int) bool {
	return s.Municipalities > s.disabledIn[moduleIdx]
}

// withModuleEnabled returns copies of the module settings with module
// enabled or disabled in municipality.
func (s *Snapshot) withModuleEnabled(municipality, module string, enabled bool) {
	disabled := make(map[string]map[string]struct{}, len(s.Disabled)+1)
	for m, set := range s.Disabled {
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
	s.Disabled = disabled
	s.reindexDisabled()
}

// reindexDisabled rebuilds disabledAt, disabledIn and municipalities from
// disabled and the tree (O(locations): it runs when the tree or a module
// setting changes, never on a check).
func (s *Snapshot) reindexDisabled() {
	s.Municipalities = 0
	for _, l := range s.Tree.Locations() {
		if l.Level == location.Municipality {
			s.Municipalities++
		}
	}
	s.disabledIn = make([]int, len(s.Reg.Modules))
	at := map[int32]PermSet{}
	for module, set := range s.Disabled {
		mi, ok := s.Reg.ModuleIx[module]
		if !ok {
			continue
		}
		for muni := range set {
			i, ok := s.Tree.Index(muni)
			if !ok {
				continue
			}
			s.disabledIn[mi]++
			ps := at[i]
			if ps == nil {
				ps = NewPermSet(len(s.Reg.Modules))
				at[i] = ps
			}
			ps.Add(mi)
		}
	}
	s.disabledAt = at
}

// BuildUser finishes a user's state once its rows are read: tree indexes
// of grants and profiles not resolved yet, the union of its platform
// permissions and the counted grants of the check path. The state must not
// be published yet.
func (s *Snapshot) BuildUser(u *UserState) {
	// The unknown names are read from the list u was built with and kept
	// in a new one: that list may be a published record's.
	var unknown []string
	if u.rare != nil {
		unknown = u.rare.Unknown
	}
	name := func(loc int32) string { return unknown[firstUnknownLoc-loc] }
	u.rare = nil
	// The rows were appended one by one: keep no spare capacity.
	u.Profiles = fitted(u.Profiles)
	if len(u.Grants) > len(u.inline) {
		u.Grants = fitted(u.Grants)
	}
	for i := range u.Profiles {
		r := &u.Profiles[i]
		r.eff = nil
		if cats, all := s.EffectiveCategories(&r.P); !all {
			r.eff = NewCategorySet(cats)
		}
		if r.P.Loc <= firstUnknownLoc {
			r.P.Loc = u.locIndex(s.Tree, name(r.P.Loc))
		}
	}
	for i := range u.Grants {
		g := &u.Grants[i]
		g.Flags, g.Anchor = 0, 0
		if g.Platform() {
			r := u.rareOf()
			if r.platformPerms == nil {
				r.platformPerms = NewPermSet(len(s.Reg.Actions))
			}
			r.platformPerms.Union(s.Reg.Roles[g.Role].Perms)
			continue
		}
		if g.Loc <= firstUnknownLoc {
			if g.Loc = u.locIndex(s.Tree, name(g.Loc)); g.Loc < 0 {
				continue // counts for nothing until the location is known
			}
		}
		k, _ := s.AnchorRef(u, g.Loc)
		if k < 0 {
			continue // a grant without an anchor profile counts for nothing
		}
		p := &u.Profiles[k].P
		g.Flags = grantCounts
		if !p.Approved {
			g.Flags |= failNotApproved
		}
		if !p.Active {
			g.Flags |= failInactive
		}
		if _, all := s.EffectiveCategories(p); all {
			g.Flags |= openCategories
		}
		g.Anchor = uint8(min(k, anchorFar))
	}
}

// rebuilt returns a copy of u built again against s (after a change of the
// tree): u itself is published and stays as it is.
func (s *Snapshot) rebuilt(u *UserState) *UserState {
	c := *u
	c.Profiles = slices.Clone(u.Profiles)
	c.Grants = append(c.inline[:0:len(c.inline)], u.Grants...)
	s.BuildUser(&c)
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
