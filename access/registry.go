package access

import (
	"fmt"
	"slices"
	"sort"
)

// Built-in role names. RolePublic and RoleAuthenticated are pseudo-roles:
// they may appear in action role lists but are never granted. RoleStaff is
// an alias of RoleOperator in lists and grants alike.
const (
	RolePublic        = "public"
	RoleAuthenticated = "authenticated"
	RoleStaff         = "staff"
	RoleAdmin         = "admin"
	RoleManager       = "manager"
	RoleOperator      = "operator"
	RoleViewer        = "viewer"
	RolePlatformAdmin = "platform_admin"
)

// Platform module names. They are present in every registry; their actions
// are never read-only and they cannot be disabled per municipality.
const (
	ModuleUsers     = "users"
	ModuleModules   = "modules"
	ModuleAudit     = "audit"
	ModuleLocations = "locations"
)

// Role declares a custom role. Inherits lists roles whose permissions this
// role gets too (implicit rules included). A Reserved role is dangerous:
// only super admins grant it, and admin's implicit full control skips every
// action that lists it. A Platform role is granted only platform-wide ("*").
type Role struct {
	Name     string   `yaml:"name" json:"name"`
	Inherits []string `yaml:"inherits" json:"inherits"`
	Reserved bool     `yaml:"reserved" json:"reserved"`
	Platform bool     `yaml:"platform" json:"platform"`
}

// Action declares what a module action requires. Roles lists the roles
// allowed (built-in, custom, or the pseudo-roles public and authenticated).
// ReadOnly actions are given to viewers implicitly. Affiliated actions are
// decided on the organisation a record is attached to (SPEC §2 step 8).
type Action struct {
	Roles      []string `yaml:"roles" json:"roles"`
	ReadOnly   bool     `yaml:"read_only" json:"read_only"`
	Affiliated bool     `yaml:"affiliated" json:"affiliated"`
}

// Registry declares the modules, their actions and the roles of a platform.
// Build one with NewRegistry and AddRole/AddModule, load one with
// LoadRegistry, or start from DefaultRegistry. A Registry is not safe for
// concurrent mutation; townhall.Open compiles it and later changes to it do
// not affect the running platform.
type Registry struct {
	roles       map[string]Role
	roleOrder   []string
	modules     map[string]map[string]Action
	moduleOrder []string
}

var builtinRoles = []Role{
	{Name: RoleAdmin}, {Name: RoleManager}, {Name: RoleOperator}, {Name: RoleViewer},
	{Name: RolePlatformAdmin, Platform: true},
}

var platformModules = map[string]map[string]Action{
	ModuleUsers: {
		"view":   {Roles: []string{RoleAdmin, RoleManager, RolePlatformAdmin}},
		"manage": {Roles: []string{RoleAdmin, RolePlatformAdmin}},
	},
	ModuleModules:   {"configure": {Roles: []string{RolePlatformAdmin}}},
	ModuleAudit:     {"view": {Roles: []string{RoleAdmin, RolePlatformAdmin}}},
	ModuleLocations: {"manage": {Roles: []string{RolePlatformAdmin}}},
}

// IsPlatformModule reports whether module is one of the always-present
// platform modules.
func IsPlatformModule(module string) bool {
	_, ok := platformModules[module]
	return ok
}

// NewRegistry returns a registry holding the built-in roles and the
// platform modules only.
func NewRegistry() *Registry {
	r := &Registry{roles: map[string]Role{}, modules: map[string]map[string]Action{}}
	for _, role := range builtinRoles {
		r.roles[role.Name] = role
		r.roleOrder = append(r.roleOrder, role.Name)
	}
	for _, name := range sortedKeys(platformModules) {
		actions := map[string]Action{}
		for a, def := range platformModules[name] {
			actions[a] = Action{Roles: slices.Clone(def.Roles)}
		}
		r.modules[name] = actions
		r.moduleOrder = append(r.moduleOrder, name)
	}
	return r
}

// DefaultRegistry returns the registry of SPEC §1: occurrences, equipment
// and occupancy, plus the platform modules.
//
//	occurrences  view                 public, staff, manager, admin  read_only
//	occurrences  create               public, staff, admin
//	occurrences  update               staff, manager, admin
//	occurrences  assign close export  manager, admin
//	occurrences  delete               admin
//	equipment    view                 staff, manager, admin          read_only
//	equipment    create export        manager, admin
//	equipment    update               staff, manager, admin
//	equipment    delete               admin
//	occupancy    view                 public, staff, manager, admin  read_only
//	occupancy    configure export     manager, admin
//	users        view                 admin, manager, platform_admin
//	users        manage               admin, platform_admin
//	modules      configure            platform_admin
//	audit        view                 admin, platform_admin
//	locations    manage               platform_admin
func DefaultRegistry() *Registry {
	r := NewRegistry()
	ma := []string{RoleManager, RoleAdmin}
	r.put("occurrences", map[string]Action{
		"view":   {Roles: []string{RolePublic, RoleStaff, RoleManager, RoleAdmin}, ReadOnly: true},
		"create": {Roles: []string{RolePublic, RoleStaff, RoleAdmin}},
		"update": {Roles: []string{RoleStaff, RoleManager, RoleAdmin}},
		"assign": {Roles: ma},
		"close":  {Roles: ma},
		"export": {Roles: ma},
		"delete": {Roles: []string{RoleAdmin}},
	})
	r.put("equipment", map[string]Action{
		"view":   {Roles: []string{RoleStaff, RoleManager, RoleAdmin}, ReadOnly: true},
		"create": {Roles: ma},
		"export": {Roles: ma},
		"update": {Roles: []string{RoleStaff, RoleManager, RoleAdmin}},
		"delete": {Roles: []string{RoleAdmin}},
	})
	r.put("occupancy", map[string]Action{
		"view":      {Roles: []string{RolePublic, RoleStaff, RoleManager, RoleAdmin}, ReadOnly: true},
		"configure": {Roles: ma},
		"export":    {Roles: ma},
	})
	return r
}

// put adds a module whose declaration is a constant of this package (its
// validity is asserted by the tests, which replay it through AddModule).
func (r *Registry) put(name string, actions map[string]Action) {
	m := map[string]Action{}
	for a, def := range actions {
		roles := make([]string, 0, len(def.Roles))
		for _, role := range def.Roles {
			if c := canonicalRole(role); !slices.Contains(roles, c) {
				roles = append(roles, c)
			}
		}
		def.Roles = roles
		m[a] = def
	}
	r.modules[name] = m
	r.moduleOrder = append(r.moduleOrder, name)
}

// AddRole declares a custom role. Inherited roles must be declared first.
// Built-in and pseudo-role names cannot be redeclared. A role that inherits
// a reserved role must be reserved itself, and one that inherits a
// platform role must be a platform role.
func (r *Registry) AddRole(role Role) error {
	if !validName(role.Name) {
		return fmt.Errorf("%w: role name %q", ErrInvalidInput, role.Name)
	}
	switch role.Name {
	case RolePublic, RoleAuthenticated, RoleStaff:
		return fmt.Errorf("%w: role %q is reserved by townhall", ErrInvalidInput, role.Name)
	}
	if _, dup := r.roles[role.Name]; dup {
		return fmt.Errorf("%w: role %q declared twice", ErrInvalidInput, role.Name)
	}
	role.Inherits = slices.Clone(role.Inherits)
	for i, in := range role.Inherits {
		in = canonicalRole(in)
		parent, ok := r.roles[in]
		if !ok {
			return fmt.Errorf("%w: role %q inherits undeclared role %q", ErrUnknownRole, role.Name, in)
		}
		if parent.Platform && !role.Platform {
			return fmt.Errorf("%w: role %q is not a platform role but inherits platform role %q", ErrInvalidInput, role.Name, in)
		}
		if parent.Reserved && !role.Reserved {
			// Whoever may grant role would hand out the reserved role's
			// permissions: role must be reserved itself.
			return fmt.Errorf("%w: role %q inherits reserved role %q and must be declared reserved: true", ErrInvalidInput, role.Name, in)
		}
		role.Inherits[i] = in
	}
	r.roles[role.Name] = role
	r.roleOrder = append(r.roleOrder, role.Name)
	return nil
}

// AddModule declares a module and its actions. For a platform module it
// adds actions or extends the role lists of existing ones. Every role in a
// list must be declared (or be public, authenticated or staff).
func (r *Registry) AddModule(name string, actions map[string]Action) error {
	if !validName(name) {
		return fmt.Errorf("%w: module name %q", ErrInvalidInput, name)
	}
	existing, exists := r.modules[name]
	platform := IsPlatformModule(name)
	if exists && !platform {
		return fmt.Errorf("%w: module %q declared twice", ErrInvalidInput, name)
	}
	if len(actions) == 0 {
		return fmt.Errorf("%w: module %q has no actions", ErrInvalidInput, name)
	}
	merged := map[string]Action{}
	for a, def := range existing {
		merged[a] = Action{Roles: slices.Clone(def.Roles)}
	}
	for _, a := range sortedKeys(actions) {
		def := actions[a]
		if !validName(a) {
			return fmt.Errorf("%w: module %q: action name %q", ErrInvalidInput, name, a)
		}
		if len(def.Roles) == 0 {
			return fmt.Errorf("%w: %s.%s lists no roles", ErrInvalidInput, name, a)
		}
		if platform && def.ReadOnly {
			return fmt.Errorf("%w: %s.%s: platform actions are never read_only", ErrInvalidInput, name, a)
		}
		roles := merged[a].Roles
		for _, role := range def.Roles {
			if err := r.checkListedRole(role); err != nil {
				return fmt.Errorf("%s.%s: %w", name, a, err)
			}
			if c := canonicalRole(role); !slices.Contains(roles, c) {
				roles = append(roles, c)
			}
		}
		merged[a] = Action{Roles: roles, ReadOnly: def.ReadOnly, Affiliated: def.Affiliated}
	}
	r.modules[name] = merged
	if !exists {
		r.moduleOrder = append(r.moduleOrder, name)
	}
	return nil
}

func (r *Registry) checkListedRole(role string) error {
	switch role {
	case RolePublic, RoleAuthenticated, RoleStaff:
		return nil
	}
	if _, ok := r.roles[role]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownRole, role)
	}
	return nil
}

// Modules returns the module names in declaration order (platform modules
// first).
func (r *Registry) Modules() []string { return slices.Clone(r.moduleOrder) }

// Actions returns the action names of module, sorted; nil for an unknown
// module.
func (r *Registry) Actions(module string) []string {
	m, ok := r.modules[module]
	if !ok {
		return nil
	}
	return sortedKeys(m)
}

// Action returns the declaration of module.action.
func (r *Registry) Action(module, action string) (Action, error) {
	m, ok := r.modules[module]
	if !ok {
		return Action{}, fmt.Errorf("%w %q", ErrUnknownModule, module)
	}
	def, ok := m[action]
	if !ok {
		return Action{}, fmt.Errorf("%w %q in module %q", ErrUnknownAction, action, module)
	}
	def.Roles = slices.Clone(def.Roles)
	return def, nil
}

// Roles returns the grantable roles (built-in, then custom in declaration
// order).
func (r *Registry) Roles() []Role {
	out := make([]Role, 0, len(r.roleOrder))
	for _, name := range r.roleOrder {
		role := r.roles[name]
		role.Inherits = slices.Clone(role.Inherits)
		out = append(out, role)
	}
	return out
}

// Role returns the declaration of a grantable role; "staff" names operator.
func (r *Registry) Role(name string) (Role, error) {
	role, ok := r.roles[canonicalRole(name)]
	if !ok {
		return Role{}, fmt.Errorf("%w %q", ErrUnknownRole, name)
	}
	role.Inherits = slices.Clone(role.Inherits)
	return role, nil
}

// canonicalRole resolves the staff alias.
func canonicalRole(role string) string {
	if role == RoleStaff {
		return RoleOperator
	}
	return role
}

// validName accepts 1–64 characters of a-z A-Z 0-9 _ -.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
