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

// Denial flags in reporting order (SPEC §2 step 9).
const (
	FailNotAffiliated = 1 << iota
	FailCategory
	FailOutOfScope
	FailNotApproved
	FailInactive
)

// Snapshot is everything a decision needs, held in memory so that a check
// never touches the database. A published snapshot is immutable: checks
// load it with one atomic read and never wait for a writer; a writer builds
// the next snapshot by copying the parts it changes (one shard of users,
// the tree, a settings map) and publishes it with one atomic store, so a
// check sees a change entirely or not at all.
type Snapshot struct {
	// Epoch counts the changes that took names from indexes: a user removed
	// from the table, a location removed, the tree reloaded (auditcode.go).
	Epoch uint32

	Reg  *Compiled
	Tree *location.Tree // frozen; set with SetTree
	View location.View  // tree's view, for the check path

	Users       UserTable
	Departments map[string]CategorySet // department ID → its categories
	// Disabled holds, per module, the municipalities where it is disabled;
	// DisabledAt the same per municipality index, as a set of module
	// indexes, for the check's single lookup.
	Disabled   map[string]map[string]struct{}
	DisabledAt map[int32]PermSet
	// DisabledIn counts, per module index, the live municipalities that
	// disable it; municipalities counts the live municipalities.
	DisabledIn     []int
	Municipalities int
	// ApprovalOff holds the municipalities that do not require approval.
	ApprovalOff map[string]struct{}

	Orgs     map[string]*OrgState
	Links    map[string]map[string][]Window // user → organisation → link windows
	Sessions Sessions                       // live impersonation sessions
}

// SetTree makes t, frozen, the snapshot's tree.
func (s *Snapshot) SetTree(t *location.Tree) {
	s.Tree = t.Freeze()
	s.View = s.Tree.View()
}

// UserShards splits the users so that a change copies 1/256 of them.
const UserShards = 256

// UserTable maps user IDs to their state, in shards copied on write, and
// gives every user a dense index (its Principal handle) that stays the same
// for the checker's lifetime: by index, users sit in chunks of ChunkSize,
// also copied on write. A table is immutable once published.
type UserTable struct {
	Seed   maphash.Seed
	Shards *[UserShards]*IDShard // ID → dense index
	Dense  []*UserChunk          // index >> ChunkBits → chunk
	Next   uint32                // the next unused index
	// Pending holds the users whose state is pending (UserState.IsPending),
	// to build again when locations are added; copied on write.
	Pending map[string]struct{}
}

const (
	ChunkBits = 8
	ChunkSize = 1 << ChunkBits
)

// UserChunk holds the users of ChunkSize consecutive indexes.
type UserChunk [ChunkSize]*UserState

// NewUserTable returns an empty table.
func NewUserTable() UserTable {
	var shards [UserShards]*IDShard
	for i := range shards {
		shards[i] = &IDShard{}
	}
	return UserTable{Seed: maphash.MakeSeed(), Shards: &shards}
}

// Hash is the table's hash of a user ID.
func (t *UserTable) Hash(id string) uint64 { return maphash.String(t.Seed, id) }

// Get returns the state of user id.
func (t *UserTable) Get(id string) (*UserState, bool) {
	h := t.Hash(id)
	ix, ok := t.Shards[h%UserShards].Find(id, h, t.At)
	if !ok {
		return nil, false
	}
	u := t.At(ix)
	return u, u != nil
}

// At returns the state of the user of dense index i, nil when there is none
// (any more).
func (t *UserTable) At(i uint32) *UserState {
	if c := i >> ChunkBits; uint(c) < uint(len(t.Dense)) {
		return t.Dense[c][i&(ChunkSize-1)]
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
	shards := *t.Shards
	t.Dense = slices.Clone(t.Dense)
	copied := map[uint64]bool{}
	copiedChunk := map[uint32]bool{}
	dropped := map[uint32]bool{}
	pendingCopied := false
	for id, u := range changes {
		if _, was := t.Pending[id]; was != (u != nil && u.IsPending()) {
			if !pendingCopied {
				t.Pending, pendingCopied = maps.Clone(t.Pending), true
				if t.Pending == nil {
					t.Pending = map[string]struct{}{}
				}
			}
			if was {
				delete(t.Pending, id)
			} else {
				t.Pending[id] = struct{}{}
			}
		}
		h := t.Hash(id)
		si := h % UserShards
		ix, had := shards[si].Find(id, h, t.At)
		switch {
		case had:
			if u == nil {
				dropped[ix] = true
				if !copied[si] {
					shards[si], copied[si] = shards[si].Rebuilt(0, nil), true
				}
			}
		case u == nil:
			continue
		default:
			ix = t.Next
			t.Next++
			if !copied[si] || shards[si].Full() {
				shards[si], copied[si] = shards[si].Rebuilt(1, nil), true
			}
			shards[si].Insert(id, h, ix)
		}
		if u != nil {
			u.ID, u.Idx = id, ix // u is not published yet
		}
		c := ix >> ChunkBits
		for uint(c) >= uint(len(t.Dense)) {
			t.Dense = append(t.Dense, &UserChunk{})
			copiedChunk[uint32(len(t.Dense)-1)] = true
		}
		if !copiedChunk[c] {
			chunk := *t.Dense[c]
			t.Dense[c] = &chunk
			copiedChunk[c] = true
		}
		t.Dense[c][ix&(ChunkSize-1)] = u
	}
	if len(dropped) > 0 {
		for si := range copied {
			shards[si] = shards[si].Rebuilt(0, func(ix uint32) bool { return dropped[ix] })
		}
	}
	t.Shards = &shards
	return t
}

// SetUsers gives the users of changes the given states (nil removes): see
// UserTable.with. Removing a user starts a new epoch.
func (s *Snapshot) SetUsers(changes map[string]*UserState) {
	for id, u := range changes {
		if _, had := s.Users.Get(id); had && u == nil {
			s.Epoch++
			break
		}
	}
	s.Users = s.Users.With(changes)
}

// Put adds a user while the table is being built (not yet published),
// with its index in prev when prev holds it.
func (t *UserTable) Put(id string, u *UserState, prev *UserTable) {
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
	si := h % UserShards
	if t.Shards[si].Full() {
		t.Shards[si] = t.Shards[si].Rebuilt(1, nil)
	}
	t.Shards[si].Insert(id, h, ix)
	c := ix >> ChunkBits
	for uint(c) >= uint(len(t.Dense)) {
		t.Dense = append(t.Dense, &UserChunk{})
	}
	t.Dense[c][ix&(ChunkSize-1)] = u
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
	Inline [2]Grant
	// Rare holds what most users lack (platform grants, locations the tree
	// does not hold): nil for them.
	Rare *UserRare

	ID       string
	Profiles []ProfileRef
}

// UserRare is the part of a UserState most users do not need.
type UserRare struct {
	// PlatformPerms is the union of the permissions of the platform
	// grants, nil without any.
	PlatformPerms PermSet
	// Unknown names the locations of grants and profiles that the tree
	// does not hold (yet), by index (see LocOf). A user with one is
	// pending: its state is built again when locations are added.
	Unknown []string
}

// HasPlatform reports whether a platform grant of u gives action index ai.
func (u *UserState) HasPlatform(ai int) bool {
	return u.Rare != nil && u.Rare.PlatformPerms != nil && u.Rare.PlatformPerms.Has(ai)
}

// HasPlatformGrant reports whether u holds a platform grant.
func (u *UserState) HasPlatformGrant() bool { return u.Rare != nil && u.Rare.PlatformPerms != nil }

// RareOf returns u.rare, creating it. u must not be published yet, nor
// its rare part shared with a published record.
func (u *UserState) RareOf() *UserRare {
	if u.Rare == nil {
		u.Rare = &UserRare{}
	}
	return u.Rare
}

// Location indexes of grants and profiles: a tree index (live, or of a
// location removed since), PlatformLoc for a platform grant ("*"), or, at
// FirstUnknownLoc and below, a location the tree does not hold, named in
// UserState.unknown. Records hold these indexes, never the IDs: a million
// grants cost no string each.
const (
	PlatformLoc     int32 = -1
	FirstUnknownLoc int32 = -2
)

// Grant is one role held at a location (or "*"), 8 bytes. BuildUser
// resolves its anchor profile (SPEC §1: the nearest profile at the grant's
// location or above it); a location grant that has one counts, with that
// profile's flags.
type Grant struct {
	Loc    int32  // location index (see PlatformLoc)
	Role   uint16 // index into compiled.roles
	Flags  uint8  // GrantCounts; FailNotApproved, FailInactive of the anchor; OpenCategories
	Anchor uint8  // index of the anchor profile in UserState.profiles, AnchorFar past 254
}

// Platform reports whether g is a platform grant ("*").
func (g *Grant) Platform() bool { return g.Loc == PlatformLoc }

// IsPending reports whether a grant or profile of u names a location the
// tree does not hold.
func (u *UserState) IsPending() bool { return u.Rare != nil && u.Rare.Unknown != nil }

// LocOf returns the location ID that index loc stands for in u's records
// (see PlatformLoc), read from s's tree: a record's tree index names the
// same location in every later snapshot, since tree changes never reuse
// an index and a full reload builds every record again.
func (s *Snapshot) LocOf(u *UserState, loc int32) string {
	switch {
	case loc >= 0:
		return s.View.NameIndex(loc)
	case loc == PlatformLoc:
		return policy.PlatformDomain
	}
	return u.Rare.Unknown[FirstUnknownLoc-loc]
}

// GrantAt returns the location ID of g, a grant of u ("*" for a platform
// Grant).
func (s *Snapshot) GrantAt(u *UserState, g *Grant) string { return s.LocOf(u, g.Loc) }

// NameUnknown returns the location index standing for id, a location the
// tree does not hold, in u's unknown names, adding it when new. u must not
// be published yet, nor its unknown list shared with a published record.
func (u *UserState) NameUnknown(id string) int32 {
	r := u.RareOf()
	for i, n := range r.Unknown {
		if n == id {
			return FirstUnknownLoc - int32(i)
		}
	}
	r.Unknown = append(r.Unknown, id)
	return FirstUnknownLoc - int32(len(r.Unknown)-1)
}

// LocIndex returns the location index of id for a record of u being
// built: its tree index in tree, or else an unknown name of u.
func (u *UserState) LocIndex(tree *location.Tree, id string) int32 {
	if i, ok := tree.Index(id); ok {
		return i
	}
	return u.NameUnknown(id)
}

const (
	// GrantCounts marks a location grant with an anchor profile: the
	// grants the check path reads.
	GrantCounts = 1 << 6
	// OpenCategories marks a counted grant whose anchor profile restricts
	// no category by itself or through a department.
	OpenCategories = 1 << 7
	// AnchorFar is grant.anchor for an anchor profile whose index does not
	// fit a byte (a user with hundreds of profiles): it is found again.
	AnchorFar = 255
)

// AddGrant appends g to u's grants, in u's inline array while it has room;
// unknown, when not empty, is g's location, which the tree does not hold.
// u must not be published yet.
func (u *UserState) AddGrant(g Grant, unknown string) {
	if unknown != "" {
		g.Loc = u.NameUnknown(unknown)
	}
	if u.Grants == nil {
		u.Grants = u.Inline[:0]
	}
	u.Grants = append(u.Grants, g)
}

// AddProfile appends r to u's profiles; unknown, when not empty, is r's
// location, which the tree does not hold. u must not be published yet.
func (u *UserState) AddProfile(r ProfileRef, unknown string) {
	if unknown != "" {
		r.P.Loc = u.NameUnknown(unknown)
	}
	u.Profiles = append(u.Profiles, r)
}

// Counts reports whether g is a location grant with an anchor profile.
func (g *Grant) Counts() bool { return g.Flags&GrantCounts != 0 }

// Fails returns the denial flags of g's anchor profile.
func (g *Grant) Fails() int { return int(g.Flags) & (FailNotApproved | FailInactive) }

// AllowsCategory reports whether category lies in the effective
// categories of g's anchor profile.
func (g *Grant) AllowsCategory(s *Snapshot, u *UserState, category string) bool {
	if g.Flags&OpenCategories != 0 {
		return true
	}
	k := int(g.Anchor)
	if k == AnchorFar {
		k, _ = s.AnchorRef(u, g.Loc)
	}
	_, ok := u.Profiles[k].Eff[category]
	return ok
}

// ProfileRef is a profile with its effective categories, 32 bytes (one
// allocation class below what a department ID and a separate location
// field would take); the profile's state is held by value (never shared
// between records).
type ProfileRef struct {
	P ProfileState
	// Eff is p's effective categories when they are not all (nil: none),
	// set by BuildUser.
	Eff CategorySet
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
	Department DeptRef
	Allowed    CategorySet
	// Loc is the profile's location index (see PlatformLoc; never
	// PlatformLoc), set for the profiles of a UserState only; it sits
	// here, in what would be padding, to keep ProfileRef at 32 bytes.
	Loc              int32
	Approved, Active bool
}

// DeptRef names a profile's department, interned: 8 bytes per profile
// where the ID would take 16 and a copy of its bytes. The zero value is
// no department.
type DeptRef struct{ H unique.Handle[string] }

// DeptOf returns the reference of department id ("" for none).
func DeptOf(id string) DeptRef {
	if id == "" {
		return DeptRef{}
	}
	return DeptRef{unique.Make(id)}
}

// ID returns the department's ID, "" for none.
func (d DeptRef) ID() string {
	if d == (DeptRef{}) {
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
// and Admin use; checks read it precomputed (ProfileRef.eff).
func (s *Snapshot) EffectiveCategories(p *ProfileState) (cats []string, all bool) {
	dept := s.Departments[p.Department.ID()]
	if p.Allowed == nil && dept == nil {
		return nil, true
	}
	cats, all = users.EffectiveCategories(users.Profile{AllowedCategories: SetKeys(p.Allowed)},
		&users.Department{Categories: SetKeys(dept)})
	return slices.DeleteFunc(cats, func(c string) bool { return c == "" }), all
}

// SetKeys returns the categories of set, unsorted.
func SetKeys(set CategorySet) []string {
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
			if r := u.Profiles[k].P.Loc; r == i || r <= FirstUnknownLoc && s.LocOf(u, r) == s.View.IDIndex(i) {
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
	if muni < 0 || len(s.DisabledAt) == 0 {
		return true
	}
	set, ok := s.DisabledAt[muni]
	return !ok || !set.Has(moduleIdx)
}

// EnabledEverywhereIdx reports whether no live municipality disables the
// module (settings of deleted municipalities do not count).
func (s *Snapshot) EnabledEverywhereIdx(moduleIdx int) bool {
	return s.DisabledIn[moduleIdx] == 0
}

// EnabledSomewhereIdx reports whether some live municipality has the
// module enabled.
func (s *Snapshot) EnabledSomewhereIdx(moduleIdx int) bool {
	return s.Municipalities > s.DisabledIn[moduleIdx]
}

// WithModuleEnabled returns copies of the module settings with module
// enabled or disabled in municipality.
func (s *Snapshot) WithModuleEnabled(municipality, module string, enabled bool) {
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
	s.ReindexDisabled()
}

// ReindexDisabled rebuilds DisabledAt, DisabledIn and municipalities from
// disabled and the tree (O(locations): it runs when the tree or a module
// setting changes, never on a check).
func (s *Snapshot) ReindexDisabled() {
	s.Municipalities = 0
	for _, l := range s.Tree.Locations() {
		if l.Level == location.Municipality {
			s.Municipalities++
		}
	}
	s.DisabledIn = make([]int, len(s.Reg.Modules))
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
			s.DisabledIn[mi]++
			ps := at[i]
			if ps == nil {
				ps = NewPermSet(len(s.Reg.Modules))
				at[i] = ps
			}
			ps.Add(mi)
		}
	}
	s.DisabledAt = at
}

// BuildUser finishes a user's state once its rows are read: tree indexes
// of grants and profiles not resolved yet, the union of its platform
// permissions and the counted grants of the check path. The state must not
// be published yet.
func (s *Snapshot) BuildUser(u *UserState) {
	// The unknown names are read from the list u was built with and kept
	// in a new one: that list may be a published record's.
	var unknown []string
	if u.Rare != nil {
		unknown = u.Rare.Unknown
	}
	name := func(loc int32) string { return unknown[FirstUnknownLoc-loc] }
	u.Rare = nil
	// The rows were appended one by one: keep no spare capacity.
	u.Profiles = Fitted(u.Profiles)
	if len(u.Grants) > len(u.Inline) {
		u.Grants = Fitted(u.Grants)
	}
	for i := range u.Profiles {
		r := &u.Profiles[i]
		r.Eff = nil
		if cats, all := s.EffectiveCategories(&r.P); !all {
			r.Eff = NewCategorySet(cats)
		}
		if r.P.Loc <= FirstUnknownLoc {
			r.P.Loc = u.LocIndex(s.Tree, name(r.P.Loc))
		}
	}
	for i := range u.Grants {
		g := &u.Grants[i]
		g.Flags, g.Anchor = 0, 0
		if g.Platform() {
			r := u.RareOf()
			if r.PlatformPerms == nil {
				r.PlatformPerms = NewPermSet(len(s.Reg.Actions))
			}
			r.PlatformPerms.Union(s.Reg.Roles[g.Role].Perms)
			continue
		}
		if g.Loc <= FirstUnknownLoc {
			if g.Loc = u.LocIndex(s.Tree, name(g.Loc)); g.Loc < 0 {
				continue // counts for nothing until the location is known
			}
		}
		k, _ := s.AnchorRef(u, g.Loc)
		if k < 0 {
			continue // a grant without an anchor profile counts for nothing
		}
		p := &u.Profiles[k].P
		g.Flags = GrantCounts
		if !p.Approved {
			g.Flags |= FailNotApproved
		}
		if !p.Active {
			g.Flags |= FailInactive
		}
		if _, all := s.EffectiveCategories(p); all {
			g.Flags |= OpenCategories
		}
		g.Anchor = uint8(min(k, AnchorFar))
	}
}

// Rebuilt returns a copy of u built again against s (after a change of the
// tree): u itself is published and stays as it is.
func (s *Snapshot) Rebuilt(u *UserState) *UserState {
	c := *u
	c.Profiles = slices.Clone(u.Profiles)
	c.Grants = append(c.Inline[:0:len(c.Inline)], u.Grants...)
	s.BuildUser(&c)
	return &c
}

// Fitted returns s, or a copy of it without spare capacity when it has
// some (a record lives as long as its snapshot).
func Fitted[T any](s []T) []T {
	if cap(s) == len(s) {
		return s
	}
	return slices.Clone(s)
}
