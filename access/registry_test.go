package access

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func allows(t *testing.T, r *Registry, role, module, action string) bool {
	t.Helper()
	c, err := r.compile()
	require.NoError(t, err)
	ri, ok := roleIndex(c, role)
	require.True(t, ok, "role %s", role)
	ai, err := actionIndex(c, module, action)
	require.NoError(t, err)
	return c.Roles[ri].Perms.Has(ai)
}

func TestDefaultRegistry_ReplaysThroughAddModule(t *testing.T) {
	def := DefaultRegistry()
	replay := NewRegistry()
	for _, m := range def.Modules() {
		if IsPlatformModule(m) {
			continue
		}
		actions := map[string]Action{}
		for _, a := range def.Actions(m) {
			act, err := def.Action(m, a)
			require.NoError(t, err)
			actions[a] = act
		}
		require.NoError(t, replay.AddModule(m, actions), m)
	}
	assert.Equal(t, def.Modules(), replay.Modules())
}

func TestDefaultRegistry_Table(t *testing.T) {
	r := DefaultRegistry()
	want := map[string][]string{ // module.action → roles that may, by the implicit rules too
		"occurrences.view":    {"admin", "manager", "operator", "viewer"},
		"occurrences.create":  {"admin", "operator"},
		"occurrences.update":  {"admin", "manager", "operator"},
		"occurrences.assign":  {"admin", "manager"},
		"occurrences.close":   {"admin", "manager"},
		"occurrences.export":  {"admin", "manager"},
		"occurrences.delete":  {"admin"},
		"equipment.view":      {"admin", "manager", "operator", "viewer"},
		"equipment.create":    {"admin", "manager"},
		"equipment.export":    {"admin", "manager"},
		"equipment.update":    {"admin", "manager", "operator"},
		"equipment.delete":    {"admin"},
		"occupancy.view":      {"admin", "manager", "operator", "viewer"},
		"occupancy.configure": {"admin", "manager"},
		"occupancy.export":    {"admin", "manager"},
		"users.view":          {"admin", "manager", "platform_admin"},
		"users.manage":        {"admin", "platform_admin"},
		"modules.configure":   {"platform_admin"},
		"audit.view":          {"admin", "platform_admin"},
		"locations.manage":    {"platform_admin"},
	}
	roles := []string{"admin", "manager", "operator", "viewer", "platform_admin"}
	count := 0
	for _, m := range r.Modules() {
		for _, a := range r.Actions(m) {
			count++
			expected, ok := want[m+"."+a]
			require.True(t, ok, "unexpected action %s.%s", m, a)
			for _, role := range roles {
				assert.Equal(t, contains(expected, role), allows(t, r, role, m, a), "%s on %s.%s", role, m, a)
			}
		}
	}
	assert.Equal(t, len(want), count)
	act, err := r.Action("occurrences", "create")
	require.NoError(t, err)
	assert.Contains(t, act.Roles, RolePublic)
	assert.True(t, allows(t, r, "staff", "occurrences", "create"), "staff is operator")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestRegistry_ImplicitRulesAndInheritance(t *testing.T) {
	r := DefaultRegistry()
	require.NoError(t, r.AddRole(Role{Name: "claim_admin", Inherits: []string{"viewer"}}))
	require.NoError(t, r.AddRole(Role{Name: "db_creator", Reserved: true}))
	require.NoError(t, r.AddRole(Role{Name: "auditor", Platform: true}))
	require.NoError(t, r.AddModule("claims", map[string]Action{
		"view":   {Roles: []string{"claim_admin"}, ReadOnly: true},
		"submit": {Roles: []string{"claim_admin"}, Affiliated: true},
	}))
	require.NoError(t, r.AddModule("backups", map[string]Action{
		"create":  {Roles: []string{"db_creator"}},
		"inspect": {Roles: []string{"manager"}},
	}))
	require.NoError(t, r.AddModule(ModuleAudit, map[string]Action{"view": {Roles: []string{"auditor"}}}))

	assert.True(t, allows(t, r, "claim_admin", "occurrences", "view"), "inherits viewer's implicit read-only rule")
	assert.True(t, allows(t, r, "claim_admin", "claims", "submit"))
	assert.False(t, allows(t, r, "claim_admin", "occurrences", "update"))
	assert.True(t, allows(t, r, "admin", "claims", "submit"), "admin controls every non-platform module")
	assert.False(t, allows(t, r, "admin", "backups", "create"), "actions listing a reserved role stay with it")
	assert.True(t, allows(t, r, "admin", "backups", "inspect"))
	assert.True(t, allows(t, r, "db_creator", "backups", "create"))
	assert.False(t, allows(t, r, "admin", "modules", "configure"), "admin gets no platform action implicitly")
	assert.True(t, allows(t, r, "auditor", "audit", "view"), "platform module lists may be extended")
	assert.True(t, allows(t, r, "admin", "audit", "view"), "extension keeps the original list")
}

func TestRegistry_BuilderRejectsBadDeclarations(t *testing.T) {
	cases := []struct {
		name string
		do   func(r *Registry) error
		want error
	}{
		{"redeclared builtin", func(r *Registry) error { return r.AddRole(Role{Name: "admin"}) }, ErrInvalidInput},
		{"pseudo role", func(r *Registry) error { return r.AddRole(Role{Name: "public"}) }, ErrInvalidInput},
		{"bad role name", func(r *Registry) error { return r.AddRole(Role{Name: "a b"}) }, ErrInvalidInput},
		{"empty role name", func(r *Registry) error { return r.AddRole(Role{}) }, ErrInvalidInput},
		{"unknown parent", func(r *Registry) error { return r.AddRole(Role{Name: "x", Inherits: []string{"nope"}}) }, ErrUnknownRole},
		{"self parent", func(r *Registry) error { return r.AddRole(Role{Name: "x", Inherits: []string{"x"}}) }, ErrUnknownRole},
		{"inherits platform", func(r *Registry) error {
			return r.AddRole(Role{Name: "x", Inherits: []string{"platform_admin"}})
		}, ErrInvalidInput},
		{"inherits reserved without being reserved", func(r *Registry) error {
			if err := r.AddRole(Role{Name: "db_creator", Reserved: true}); err != nil {
				return err
			}
			return r.AddRole(Role{Name: "helper", Inherits: []string{"db_creator"}})
		}, ErrInvalidInput},
		{"duplicate module", func(r *Registry) error {
			return r.AddModule("occurrences", map[string]Action{"x": {Roles: []string{"admin"}}})
		}, ErrInvalidInput},
		{"no actions", func(r *Registry) error { return r.AddModule("m", nil) }, ErrInvalidInput},
		{"empty action", func(r *Registry) error { return r.AddModule("m", map[string]Action{"a": {}}) }, ErrInvalidInput},
		{"unknown listed role", func(r *Registry) error {
			return r.AddModule("m", map[string]Action{"a": {Roles: []string{"ghost"}}})
		}, ErrUnknownRole},
		{"read-only platform action", func(r *Registry) error {
			return r.AddModule("users", map[string]Action{"list": {Roles: []string{"admin"}, ReadOnly: true}})
		}, ErrInvalidInput},
		{"bad module name", func(r *Registry) error {
			return r.AddModule("a.b", map[string]Action{"a": {Roles: []string{"admin"}}})
		}, ErrInvalidInput},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := DefaultRegistry()
			before := r.Modules()
			err := tc.do(r)
			assert.ErrorIs(t, err, tc.want)
			assert.Equal(t, before, r.Modules(), "nothing added")
		})
	}
}

func TestLoadRegistry_SpecExample(t *testing.T) {
	src := `
roles:
  - {name: claim_admin, inherits: [viewer]}
  - {name: db_creator, reserved: true}
modules:
  occurrences:
    actions:
      view:   {roles: [public, staff, manager, admin], read_only: true}
      create: {roles: [public, staff, admin]}
  claims:
    actions:
      submit: {roles: [claim_admin], affiliated: true}
`
	r, err := LoadRegistry(strings.NewReader(src))
	require.NoError(t, err)
	act, err := r.Action("claims", "submit")
	require.NoError(t, err)
	assert.True(t, act.Affiliated)
	assert.False(t, allows(t, r, "manager", "occurrences", "create"), "manager really is left out")
	assert.True(t, allows(t, r, "operator", "occurrences", "create"))
	role, err := r.Role("db_creator")
	require.NoError(t, err)
	assert.True(t, role.Reserved)
	for _, m := range []string{"users", "modules", "audit", "locations"} {
		assert.Contains(t, r.Modules(), m, "platform modules are always present")
	}
}

func TestLoadRegistry_JSON(t *testing.T) {
	src := `{"roles":[{"name":"inspector","inherits":["viewer"]}],
	 "modules":{"inspections":{"actions":{"file":{"roles":["inspector"]}}}}}`
	r, err := LoadRegistry(strings.NewReader(src))
	require.NoError(t, err)
	assert.True(t, allows(t, r, "inspector", "inspections", "file"))
}

func TestLoadRegistry_ErrorsNameThePlace(t *testing.T) {
	cases := []struct {
		name, src, place string
		want             error
	}{
		{"unknown top key", "rolez: []\n", "line 1: document: unknown key \"rolez\"", ErrInvalidInput},
		{"unknown module key", "modules:\n  m:\n    action: {}\n", "line 3: modules.m: unknown key \"action\"", ErrInvalidInput},
		{"unknown action key", "modules:\n  m:\n    actions:\n      a: {roles: [admin], readonly: true}\n", "modules.m.actions.a: unknown key \"readonly\"", ErrInvalidInput},
		{"unknown role in list", "modules:\n  m:\n    actions:\n      a: {roles: [admin, ghost]}\n", "line 4: modules.m.actions.a.roles[1]", ErrUnknownRole},
		{"empty action", "modules:\n  m:\n    actions:\n      a: {roles: []}\n", "modules.m.actions.a: an action needs at least one role", ErrInvalidInput},
		{"no actions", "modules:\n  m:\n    actions: {}\n", "modules.m.actions", ErrInvalidInput},
		{"duplicate module", "modules:\n  m:\n    actions: {a: {roles: [admin]}}\n  m:\n    actions: {b: {roles: [admin]}}\n", "modules.m", ErrInvalidInput},
		{"duplicate action", "modules:\n  m:\n    actions:\n      a: {roles: [admin]}\n      a: {roles: [viewer]}\n", "modules.m.actions.a", ErrInvalidInput},
		{"role without name", "roles:\n  - {inherits: [viewer]}\n", "roles[0]: missing name", ErrInvalidInput},
		{"unknown role key", "roles:\n  - {name: x, reserve: true}\n", "roles[0]: unknown key \"reserve\"", ErrInvalidInput},
		{"unknown parent", "roles:\n  - {name: x, inherits: [ghost]}\n", "line 2: roles[0]", ErrUnknownRole},
		{"inherits reserved", "roles:\n  - {name: db_creator, reserved: true}\n  - {name: helper, inherits: [db_creator]}\n", "line 3: roles[1]: access: invalid input: role \"helper\" inherits reserved role \"db_creator\"", ErrInvalidInput},
		{"wrong type", "roles:\n  - {name: x, reserved: maybe}\n", "roles[0]", ErrInvalidInput},
		{"not yaml", "modules: [\n", "", ErrInvalidInput},
		{"module redeclares default-free name twice via builder", "modules:\n  users:\n    actions:\n      manage: {roles: [ghost]}\n", "modules.users.actions.manage.roles[0]", ErrUnknownRole},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadRegistry(strings.NewReader(tc.src))
			require.Error(t, err)
			assert.True(t, errors.Is(err, tc.want), "%v", err)
			assert.True(t, errors.Is(err, ErrInvalidInput), "every load error is invalid input: %v", err)
			assert.Contains(t, err.Error(), tc.place)
		})
	}
	_, err := LoadRegistry(nil)
	assert.ErrorIs(t, err, ErrInvalidInput)
}

// compiled.action finds every action, whether it has a slot of its own or
// shares one (a registry of many similar names forces both), by names
// that are equal but not the registry's own strings, and refuses names it
// does not declare, including ones that map to a declared action's slot.
func TestCompiled_ActionFindsEveryActionBySlotOrMap(t *testing.T) {
	r := DefaultRegistry()
	for m := range 40 {
		actions := map[string]Action{}
		for a := range 8 {
			actions[fmt.Sprintf("act%d", a)] = Action{Roles: []string{RoleAdmin}}
		}
		require.NoError(t, r.AddModule(fmt.Sprintf("mod%02d", m), actions))
	}
	c, err := r.compile()
	require.NoError(t, err)
	shared, own := 0, 0
	for i, info := range c.Actions {
		if s := c.Slots[actionSlotOf(info.Module, info.Action)]; s.Index == int32(i) {
			own++
		} else {
			require.Equal(t, int32(-1), s.Index, "a slot holds its own action or none")
			shared++
		}
		// Copies: equal names in other memory.
		ai, err := actionIndex(c, strings.Clone(info.Module), strings.Clone(info.Action))
		require.NoError(t, err)
		assert.Equal(t, i, ai, "%s.%s", info.Module, info.Action)
	}
	assert.Positive(t, own)
	assert.Positive(t, shared)
	for _, tc := range [][2]string{{"mod00", "act9"}, {"mod99", "act0"}, {"occurrences", "viewx"}, {"", "view"}, {"occurrences", ""}} {
		_, err := actionIndex(c, tc[0], tc[1])
		assert.True(t, errors.Is(err, ErrUnknownModule) || errors.Is(err, ErrUnknownAction), "%q.%q: %v", tc[0], tc[1], err)
	}
	// A name of a declared action's slot that is not that action.
	tried := 0
	for _, s := range c.Slots {
		if s.Index < 0 || len(s.Module) < 3 {
			continue
		}
		other := s.Module[:1] + strings.Repeat("~", len(s.Module)-2) + s.Module[len(s.Module)-1:]
		require.Equal(t, actionSlotOf(s.Module, s.Action), actionSlotOf(other, s.Action))
		_, err := actionIndex(c, other, s.Action)
		assert.ErrorIs(t, err, ErrUnknownModule, "%q", other)
		tried++
	}
	assert.Positive(t, tried)
}
