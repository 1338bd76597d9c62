package access

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"gopkg.in/yaml.v3"
)

// maxRegistryBytes bounds a registry file; anything larger is refused
// rather than read into memory.
const maxRegistryBytes = 4 << 20

// LoadRegistry reads a registry in YAML or JSON (JSON is read as YAML) and
// returns it on top of the platform modules. The shape is
//
//	roles:
//	  - {name: claim_admin, inherits: [viewer]}
//	  - {name: db_creator, reserved: true}
//	modules:
//	  occurrences:
//	    actions:
//	      view:   {roles: [public, staff, manager, admin], read_only: true}
//	      create: {roles: [public, staff, admin]}
//
// A malformed file (unknown key, unknown role, an action without roles, a
// duplicate module or action) is an error wrapping ErrInvalidInput (or
// ErrUnknownRole) that names the line and the path, such as
// "line 9: modules.claims.actions.submit.roles[0]: unknown role \"x\"".
func LoadRegistry(r io.Reader) (*Registry, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: nil reader", ErrInvalidInput)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxRegistryBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	if len(data) > maxRegistryBytes {
		return nil, fmt.Errorf("%w: registry larger than %d bytes", ErrInvalidInput, maxRegistryBytes)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidInput, err)
	}
	reg := NewRegistry()
	if len(doc.Content) == 0 {
		return reg, nil
	}
	top := doc.Content[0]
	fields, err := mapping(top, "", "roles", "modules")
	if err != nil {
		return nil, err
	}
	if n := fields["roles"]; n != nil {
		if err := loadRoles(reg, n); err != nil {
			return nil, err
		}
	}
	if n := fields["modules"]; n != nil {
		if err := loadModules(reg, n); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

func loadRoles(reg *Registry, n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return placeErr(n, "roles", "expected a list")
	}
	for i, item := range n.Content {
		path := "roles[" + strconv.Itoa(i) + "]"
		fields, err := mapping(item, path, "name", "inherits", "reserved", "platform")
		if err != nil {
			return err
		}
		var role Role
		if err := item.Decode(&role); err != nil {
			return placeErr(item, path, err.Error())
		}
		if fields["name"] == nil {
			return placeErr(item, path, "missing name")
		}
		if err := reg.AddRole(role); err != nil {
			return wrapPlace(item, path, err)
		}
	}
	return nil
}

func loadModules(reg *Registry, n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return placeErr(n, "modules", "expected a mapping of module names")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		path := "modules." + key.Value
		if seen[key.Value] {
			return placeErr(key, path, "duplicate module")
		}
		seen[key.Value] = true
		fields, err := mapping(val, path, "actions")
		if err != nil {
			return err
		}
		actsNode := fields["actions"]
		if actsNode == nil || actsNode.Kind != yaml.MappingNode || len(actsNode.Content) == 0 {
			return placeErr(val, path+".actions", "a module needs at least one action")
		}
		actions := map[string]Action{}
		for j := 0; j+1 < len(actsNode.Content); j += 2 {
			ak, av := actsNode.Content[j], actsNode.Content[j+1]
			apath := path + ".actions." + ak.Value
			if _, dup := actions[ak.Value]; dup {
				return placeErr(ak, apath, "duplicate action")
			}
			afields, err := mapping(av, apath, "roles", "read_only", "affiliated")
			if err != nil {
				return err
			}
			var def Action
			if err := av.Decode(&def); err != nil {
				return placeErr(av, apath, err.Error())
			}
			if len(def.Roles) == 0 {
				return placeErr(av, apath, "an action needs at least one role")
			}
			for k, role := range def.Roles {
				if err := reg.checkListedRole(role); err != nil {
					return wrapPlace(afields["roles"].Content[k], apath+".roles["+strconv.Itoa(k)+"]", err)
				}
			}
			actions[ak.Value] = def
		}
		if err := reg.AddModule(key.Value, actions); err != nil {
			return wrapPlace(key, path, err)
		}
	}
	return nil
}

// mapping checks that n is a mapping whose keys are all allowed and appear
// once, and returns the value node of each key.
func mapping(n *yaml.Node, path string, allowed ...string) (map[string]*yaml.Node, error) {
	where := path
	if where == "" {
		where = "document"
	}
	if n.Kind != yaml.MappingNode {
		return nil, placeErr(n, where, "expected a mapping")
	}
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		known := false
		for _, a := range allowed {
			known = known || a == k.Value
		}
		if !known {
			return nil, placeErr(k, where, fmt.Sprintf("unknown key %q", k.Value))
		}
		if out[k.Value] != nil {
			return nil, placeErr(k, where, fmt.Sprintf("duplicate key %q", k.Value))
		}
		out[k.Value] = n.Content[i+1]
	}
	return out, nil
}

func placeErr(n *yaml.Node, path, msg string) error {
	return fmt.Errorf("%w: line %d: %s: %s", ErrInvalidInput, n.Line, path, msg)
}

// wrapPlace adds the place to an error from the Go builder, keeping its
// sentinel (ErrUnknownRole or ErrInvalidInput) and adding ErrInvalidInput.
func wrapPlace(n *yaml.Node, path string, err error) error {
	if errors.Is(err, ErrInvalidInput) {
		return fmt.Errorf("line %d: %s: %w", n.Line, path, err)
	}
	return fmt.Errorf("%w: line %d: %s: %w", ErrInvalidInput, n.Line, path, err)
}
