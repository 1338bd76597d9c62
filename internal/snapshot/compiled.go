package snapshot

// PermSet is a set of action indices of a compiled registry.
type PermSet []uint64

// NewPermSet returns an empty set for n actions.
func NewPermSet(n int) PermSet { return make(PermSet, (n+63)/64) }

// Add adds action i.
func (p PermSet) Add(i int) { p[i/64] |= 1 << (uint(i) % 64) }

// Has reports whether action i is in p.
func (p PermSet) Has(i int) bool { return p[i/64]&(1<<(uint(i)%64)) != 0 }

// Union adds every action of q to p.
func (p PermSet) Union(q PermSet) {
	for i := range p {
		p[i] |= q[i]
	}
}

// SubsetOf reports whether every action of p is in q.
func (p PermSet) SubsetOf(q PermSet) bool {
	for i := range p {
		if p[i]&^q[i] != 0 {
			return false
		}
	}
	return true
}

// ActionInfo is one module action of a compiled registry.
type ActionInfo struct {
	Module, Action string
	ModuleIdx      int
	Platform       bool // of a platform module
	Public         bool // lists public
	Authenticated  bool // lists authenticated
	ReadOnly       bool
	Affiliated     bool
}

// RoleInfo is one grantable role of a compiled registry.
type RoleInfo struct {
	Name     string
	Reserved bool
	Platform bool
	Perms    PermSet // every action the role allows, implicit rules and inheritance included
}

// Compiled is the immutable, indexed form of a Registry used by checks.
type Compiled struct {
	Actions  []ActionInfo
	ActionIx map[string]map[string]int // module → action → index
	Flat     map[string]int            // the same, keyed "module\x00action", in one lookup
	// Slots is a direct-mapped table in front of flat (see action).
	Slots    *[ActionSlots]ActionSlot
	Modules  []string // module index → name
	ModuleIx map[string]int
	Roles    []RoleInfo // sorted by name
	RoleIx   map[string]int
	// ReservedActions holds the actions that list a reserved role: only
	// super admins may let anyone gain them, however the role is reached
	// (directly or through inheritance).
	ReservedActions PermSet
	// RolePerms holds the roles' permission sets back to back, words
	// uint64s each, for the check path's single load.
	RolePerms []uint64
	Words     int
}

// Allows reports whether role allows action ai.
func (c *Compiled) Allows(role uint16, ai int) bool {
	return c.RolePerms[int(role)*c.Words+ai>>6]&(1<<(uint(ai)&63)) != 0
}

// ActionSlots is the size of compiled.slots.
const ActionSlots = 256

// ActionSlot is the one action whose names map to a slot of
// compiled.slots; index -1 for a slot no action or several share.
type ActionSlot struct {
	Module, Action string
	Index          int32
}
