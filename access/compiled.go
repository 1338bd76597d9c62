package access

import (
	"fmt"
	"slices"

	"github.com/civicstack/townhall/internal/snapshot"
)

// compile resolves lists, aliases, inheritance and the implicit admin and
// viewer rules into one permission set per role.
func (r *Registry) compile() (*snapshot.Compiled, error) {
	c := &snapshot.Compiled{ActionIx: map[string]map[string]int{}, RoleIx: map[string]int{},
		Flat: map[string]int{}, ModuleIx: map[string]int{}}
	for mi, m := range r.moduleOrder {
		c.ActionIx[m] = map[string]int{}
		c.Modules = append(c.Modules, m)
		c.ModuleIx[m] = mi
		for _, a := range sortedKeys(r.modules[m]) {
			def := r.modules[m][a]
			c.ActionIx[m][a] = len(c.Actions)
			c.Flat[m+"\x00"+a] = len(c.Actions)
			c.Actions = append(c.Actions, snapshot.ActionInfo{
				Module: m, Action: a, ModuleIdx: mi, Platform: IsPlatformModule(m),
				Public:        slices.Contains(def.Roles, RolePublic),
				Authenticated: slices.Contains(def.Roles, RoleAuthenticated),
				ReadOnly:      def.ReadOnly, Affiliated: def.Affiliated,
			})
		}
	}
	c.Slots = &[snapshot.ActionSlots]snapshot.ActionSlot{}
	for k := range c.Slots {
		c.Slots[k].Index = -1
	}
	taken := map[uint8]int{}
	for i, info := range c.Actions {
		k := actionSlotOf(info.Module, info.Action)
		taken[k]++
		c.Slots[k] = snapshot.ActionSlot{Module: info.Module, Action: info.Action, Index: int32(i)}
	}
	for k, n := range taken {
		if n > 1 {
			c.Slots[k] = snapshot.ActionSlot{Index: -1} // shared: found through flat
		}
	}
	n := len(c.Actions)
	reserved := snapshot.NewPermSet(n) // actions listing a reserved role
	direct := map[string]snapshot.PermSet{}
	for name := range r.roles {
		direct[name] = snapshot.NewPermSet(n)
	}
	for i, info := range c.Actions {
		for _, role := range r.modules[info.Module][info.Action].Roles {
			if set, ok := direct[role]; ok {
				set.Add(i)
				if r.roles[role].Reserved {
					reserved.Add(i)
				}
			}
		}
	}
	for i, info := range c.Actions {
		if info.Platform {
			continue
		}
		if !reserved.Has(i) {
			direct[RoleAdmin].Add(i)
		}
		if info.ReadOnly {
			direct[RoleViewer].Add(i)
		}
	}
	c.ReservedActions = reserved
	names := slices.Clone(r.roleOrder)
	slices.Sort(names)
	for _, name := range names {
		perms, err := r.closure(name, direct, map[string]bool{})
		if err != nil {
			return nil, err
		}
		role := r.roles[name]
		c.RoleIx[name] = len(c.Roles)
		c.Roles = append(c.Roles, snapshot.RoleInfo{Name: name, Reserved: role.Reserved, Platform: role.Platform, Perms: perms})
		c.RolePerms = append(c.RolePerms, perms...)
	}
	c.Words = (n + 63) / 64
	if len(c.Roles) > 1<<16 {
		return nil, fmt.Errorf("%w: more than %d roles", ErrInvalidInput, 1<<16)
	}
	return c, nil
}

func (r *Registry) closure(name string, direct map[string]snapshot.PermSet, visiting map[string]bool) (snapshot.PermSet, error) {
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
		out.Union(p)
	}
	return out, nil
}

// flatKeyMax bounds the module and action names the single lookup joins
// on the stack; longer ones take the two-level lookup.
const flatKeyMax = 128

// action returns the index of module.action.
func actionIndex(c *snapshot.Compiled, module, action string) (int, error) {
	if module != "" && action != "" {
		// Most calls name an action that has a slot of its own: two
		// string comparisons (a pointer comparison each when the caller
		// passes the registry's constants) instead of hashing the names.
		if s := &c.Slots[actionSlotOf(module, action)]; s.Index >= 0 && s.Module == module && s.Action == action {
			return int(s.Index), nil
		}
	}
	if len(module)+len(action) < flatKeyMax {
		var buf [flatKeyMax]byte
		n := copy(buf[:], module)
		buf[n] = 0
		n += 1 + copy(buf[n+1:], action)
		// Indexing with string(bytes) hashes the bytes in place: no
		// allocation.
		if i, ok := c.Flat[string(buf[:n])]; ok {
			return i, nil
		}
	}
	m, ok := c.ActionIx[module]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownModule, module)
	}
	i, ok := m[action]
	if !ok {
		return 0, fmt.Errorf("%w %q in module %q", ErrUnknownAction, action, module)
	}
	return i, nil
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
func roleIndex(c *snapshot.Compiled, name string) (int, bool) {
	i, ok := c.RoleIx[canonicalRole(name)]
	return i, ok
}
