package access

import (
	"fmt"
	"slices"
)

// permSet is a set of action indices of a compiled registry.
type permSet []uint64

func newPermSet(n int) permSet { return make(permSet, (n+63)/64) }

func (p permSet) add(i int)      { p[i/64] |= 1 << (uint(i) % 64) }
func (p permSet) has(i int) bool { return p[i/64]&(1<<(uint(i)%64)) != 0 }
func (p permSet) union(q permSet) {
	for i := range p {
		p[i] |= q[i]
	}
}
func (p permSet) subsetOf(q permSet) bool {
	for i := range p {
		if p[i]&^q[i] != 0 {
			return false
		}
	}
	return true
}

// actionInfo is one module action of a compiled registry.
type actionInfo struct {
	module, action string
	moduleIdx      int
	platform       bool // of a platform module
	public         bool // lists public
	authenticated  bool // lists authenticated
	readOnly       bool
	affiliated     bool
}

// roleInfo is one grantable role of a compiled registry.
type roleInfo struct {
	name     string
	reserved bool
	platform bool
	perms    permSet // every action the role allows, implicit rules and inheritance included
}

// compiled is the immutable, indexed form of a Registry used by checks.
type compiled struct {
	actions  []actionInfo
	actionIx map[string]map[string]int // module → action → index
	flat     map[string]int            // the same, keyed "module\x00action", in one lookup
	// slots is a direct-mapped table in front of flat (see action).
	slots    *[actionSlots]actionSlot
	modules  []string // module index → name
	moduleIx map[string]int
	roles    []roleInfo // sorted by name
	roleIx   map[string]int
	// reservedActions holds the actions that list a reserved role: only
	// super admins may let anyone gain them, however the role is reached
	// (directly or through inheritance).
	reservedActions permSet
	// rolePerms holds the roles' permission sets back to back, words
	// uint64s each, for the check path's single load.
	rolePerms []uint64
	words     int
}

// allows reports whether role allows action ai.
func (c *compiled) allows(role uint16, ai int) bool {
	return c.rolePerms[int(role)*c.words+ai>>6]&(1<<(uint(ai)&63)) != 0
}

// compile resolves lists, aliases, inheritance and the implicit admin and
// viewer rules into one permission set per role.
func (r *Registry) compile() (*compiled, error) {
	c := &compiled{actionIx: map[string]map[string]int{}, roleIx: map[string]int{},
		flat: map[string]int{}, moduleIx: map[string]int{}}
	for mi, m := range r.moduleOrder {
		c.actionIx[m] = map[string]int{}
		c.modules = append(c.modules, m)
		c.moduleIx[m] = mi
		for _, a := range sortedKeys(r.modules[m]) {
			def := r.modules[m][a]
			c.actionIx[m][a] = len(c.actions)
			c.flat[m+"\x00"+a] = len(c.actions)
			c.actions = append(c.actions, actionInfo{
				module: m, action: a, moduleIdx: mi, platform: IsPlatformModule(m),
				public:        slices.Contains(def.Roles, RolePublic),
				authenticated: slices.Contains(def.Roles, RoleAuthenticated),
				readOnly:      def.ReadOnly, affiliated: def.Affiliated,
			})
		}
	}
	c.slots = &[actionSlots]actionSlot{}
	for k := range c.slots {
		c.slots[k].index = -1
	}
	taken := map[uint8]int{}
	for i, info := range c.actions {
		k := actionSlotOf(info.module, info.action)
		taken[k]++
		c.slots[k] = actionSlot{module: info.module, action: info.action, index: int32(i)}
	}
	for k, n := range taken {
		if n > 1 {
			c.slots[k] = actionSlot{index: -1} // shared: found through flat
		}
	}
	n := len(c.actions)
	reserved := newPermSet(n) // actions listing a reserved role
	direct := map[string]permSet{}
	for name := range r.roles {
		direct[name] = newPermSet(n)
	}
	for i, info := range c.actions {
		for _, role := range r.modules[info.module][info.action].Roles {
			if set, ok := direct[role]; ok {
				set.add(i)
				if r.roles[role].Reserved {
					reserved.add(i)
				}
			}
		}
	}
	for i, info := range c.actions {
		if info.platform {
			continue
		}
		if !reserved.has(i) {
			direct[RoleAdmin].add(i)
		}
		if info.readOnly {
			direct[RoleViewer].add(i)
		}
	}
	c.reservedActions = reserved
	names := slices.Clone(r.roleOrder)
	slices.Sort(names)
	for _, name := range names {
		perms, err := r.closure(name, direct, map[string]bool{})
		if err != nil {
			return nil, err
		}
		role := r.roles[name]
		c.roleIx[name] = len(c.roles)
		c.roles = append(c.roles, roleInfo{name: name, reserved: role.Reserved, platform: role.Platform, perms: perms})
		c.rolePerms = append(c.rolePerms, perms...)
	}
	c.words = (n + 63) / 64
	if len(c.roles) > 1<<16 {
		return nil, fmt.Errorf("%w: more than %d roles", ErrInvalidInput, 1<<16)
	}
	return c, nil
}

func (r *Registry) closure(name string, direct map[string]permSet, visiting map[string]bool) (permSet, error) {
	if visiting[name] {
		return nil, fmt.Errorf("%w: role %q inherits itself", ErrInvalidInput, name)
	}
	visiting[name] = true
	defer delete(visiting, name)
	out := slices.Clone(direct[name])
	for _, parent := range r.roles[name].Inherits {
		p, err := r.closure(parent, direct, visiting)
		if err != nil {
			return nil, err
		}
		out.union(p)
	}
	return out, nil
}

// flatKeyMax bounds the module and action names the single lookup joins
// on the stack; longer ones take the two-level lookup.
const flatKeyMax = 128

// action returns the index of module.action.
func (c *compiled) action(module, action string) (int, error) {
	if module != "" && action != "" {
		// Most calls name an action that has a slot of its own: two
		// string comparisons (a pointer comparison each when the caller
		// passes the registry's constants) instead of hashing the names.
		if s := &c.slots[actionSlotOf(module, action)]; s.index >= 0 && s.module == module && s.action == action {
			return int(s.index), nil
		}
	}
	if len(module)+len(action) < flatKeyMax {
		var buf [flatKeyMax]byte
		n := copy(buf[:], module)
		buf[n] = 0
		n += 1 + copy(buf[n+1:], action)
		// Indexing with string(bytes) hashes the bytes in place: no
		// allocation.
		if i, ok := c.flat[string(buf[:n])]; ok {
			return i, nil
		}
	}
	m, ok := c.actionIx[module]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownModule, module)
	}
	i, ok := m[action]
	if !ok {
		return 0, fmt.Errorf("%w %q in module %q", ErrUnknownAction, action, module)
	}
	return i, nil
}

// actionSlots is the size of compiled.slots.
const actionSlots = 256

// actionSlot is the one action whose names map to a slot of
// compiled.slots; index -1 for a slot no action or several share.
type actionSlot struct {
	module, action string
	index          int32
}

// actionSlotOf maps non-empty names to a slot of compiled.slots by their
// lengths and end bytes: no loop over the names, and the actions of a
// registry rarely share one (those that do are found through flat).
func actionSlotOf(module, action string) uint8 {
	h := uint(len(module))*37 + uint(module[0])*11 + uint(module[len(module)-1])*5 +
		uint(len(action))*131 + uint(action[0])*17 + uint(action[len(action)-1])*3
	return uint8(h ^ h>>8)
}

// role returns the index of a grantable role, resolving the staff alias.
func (c *compiled) role(name string) (int, bool) {
	i, ok := c.roleIx[canonicalRole(name)]
	return i, ok
}
