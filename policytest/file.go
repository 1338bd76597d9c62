package policytest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/civicstack/townhall/access"
)

// ErrInvalidFile reports a policy test file that cannot be read: malformed
// YAML, an unknown key, a missing required field, a bad registry.
var ErrInvalidFile = errors.New("policytest: invalid file")

// maxFileBytes bounds a policy test file.
const maxFileBytes = 8 << 20

// File is a policy test file: fixtures, then expectations.
type File struct {
	// Path is where the file was read from ("" for Parse).
	Path string `yaml:"-"`

	// Registry is a path (relative to the file) or the registry inline;
	// omitted means access.DefaultRegistry().
	Registry yaml.Node `yaml:"registry"`
	Levels   []string  `yaml:"levels"`
	// Now fixes the clock (RFC 3339) for link validity windows; default the
	// time of the run.
	Now string `yaml:"now"`

	Locations     []Location     `yaml:"locations"`
	Departments   []Department   `yaml:"departments"`
	Users         []User         `yaml:"users"`
	Settings      []Setting      `yaml:"settings"`
	Members       []Member       `yaml:"members"`
	Grants        []Grant        `yaml:"grants"`
	Organisations []Organisation `yaml:"organisations"`
	Links         []Link         `yaml:"links"`

	Checks  []Check   `yaml:"checks"`
	Filters []Filter  `yaml:"filters"`
	WhoCan  []WhoCan  `yaml:"who_can"`
	WhatCan []WhatCan `yaml:"what_can"`

	registry *access.Registry
	now      time.Time
}

// Location is a location fixture.
type Location struct {
	ID     string `yaml:"id"`
	Name   string `yaml:"name"`
	Level  string `yaml:"level"`
	Parent string `yaml:"parent"`
}

// Department is a department fixture; the name defaults to the ID.
type Department struct {
	ID           string   `yaml:"id"`
	Municipality string   `yaml:"municipality"`
	Name         string   `yaml:"name"`
	Categories   []string `yaml:"categories"`
}

// User is a user fixture; the username defaults to the ID, Active to true.
type User struct {
	ID         string `yaml:"id"`
	Username   string `yaml:"username"`
	Kind       string `yaml:"kind"` // interactive (default) or technical
	SuperAdmin bool   `yaml:"super_admin"`
	Active     *bool  `yaml:"active"`
	Staff      bool   `yaml:"staff"`
}

// Setting enables or disables a module in a municipality, or (with
// approval_required and no module) sets whether it requires approval.
type Setting struct {
	Municipality     string `yaml:"municipality"`
	Module           string `yaml:"module"`
	Enabled          *bool  `yaml:"enabled"`
	ApprovalRequired *bool  `yaml:"approval_required"`
}

// Member is a profile with its first grant; Approved and Active default
// to true.
type Member struct {
	User       string   `yaml:"user"`
	Location   string   `yaml:"location"`
	Role       string   `yaml:"role"`
	Department string   `yaml:"department"`
	Categories []string `yaml:"categories"`
	Approved   *bool    `yaml:"approved"`
	Active     *bool    `yaml:"active"`
}

// Grant is one more role at a location, or platform-wide at "*".
type Grant struct {
	User     string `yaml:"user"`
	Role     string `yaml:"role"`
	Location string `yaml:"location"`
}

// Organisation is an organisation fixture; the name defaults to the ID.
type Organisation struct {
	ID       string   `yaml:"id"`
	Name     string   `yaml:"name"`
	Location string   `yaml:"location"`
	Kind     string   `yaml:"kind"`
	Services []string `yaml:"services"`
}

// Link affiliates a user with an organisation, optionally within
// [from, to) (RFC 3339).
type Link struct {
	User         string `yaml:"user"`
	Organisation string `yaml:"organisation"`
	From         string `yaml:"from"`
	To           string `yaml:"to"`
}

// Resource is the record of a check.
type Resource struct {
	Location     string `yaml:"location"`
	Category     string `yaml:"category"`
	Organisation string `yaml:"organisation"`
}

// Check expects a decision of Checker.Check. Reason, Role and Domain are
// compared when given.
type Check struct {
	User         string    `yaml:"user"`
	Impersonator string    `yaml:"impersonator"`
	Municipality string    `yaml:"municipality"`
	Module       string    `yaml:"module"`
	Action       string    `yaml:"action"`
	Resource     *Resource `yaml:"resource"`
	Allow        *bool     `yaml:"allow"`
	Reason       string    `yaml:"reason"`
	Role         string    `yaml:"role"`
	Domain       string    `yaml:"domain"`
	// Error, when set, expects Check to fail with an error whose message
	// contains it (the decision is then a denial).
	Error string `yaml:"error"`

	line int
}

// Filter expects Checker.LocationFilter to contain and to exclude
// locations.
type Filter struct {
	User     string   `yaml:"user"`
	Module   string   `yaml:"module"`
	Action   string   `yaml:"action"`
	Contains []string `yaml:"contains"`
	Excludes []string `yaml:"excludes"`

	line int
}

// WhoCan expects Checker.Subjects to list exactly Users.
type WhoCan struct {
	Module   string   `yaml:"module"`
	Action   string   `yaml:"action"`
	Location string   `yaml:"location"`
	Users    []string `yaml:"users"`

	line int
}

// WhatCan expects Checker.Permissions to list exactly Actions, each
// written "module.action".
type WhatCan struct {
	User         string   `yaml:"user"`
	Municipality string   `yaml:"municipality"`
	Actions      []string `yaml:"actions"`

	line int
}

// Load reads and parses the policy test file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := parse(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f.Path = path
	return f, nil
}

// Parse parses a policy test file; a registry path in it is read relative
// to dir.
func Parse(data []byte, dir string) (*File, error) { return parse(data, dir) }

func parse(data []byte, dir string) (*File, error) {
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidFile, maxFileBytes)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidFile, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidFile, err)
	}
	lines := func(key string) []int {
		if len(doc.Content) == 0 {
			return nil
		}
		top := doc.Content[0]
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value == key {
				var out []int
				for _, item := range top.Content[i+1].Content {
					out = append(out, item.Line)
				}
				return out
			}
		}
		return nil
	}
	for i, l := range lines("checks") {
		f.Checks[i].line = l
	}
	for i, l := range lines("filters") {
		f.Filters[i].line = l
	}
	for i, l := range lines("who_can") {
		f.WhoCan[i].line = l
	}
	for i, l := range lines("what_can") {
		f.WhatCan[i].line = l
	}
	for i, c := range f.Checks {
		if c.Module == "" || c.Action == "" || c.Allow == nil && c.Error == "" {
			return nil, fmt.Errorf("%w: line %d: checks[%d]: module, action and allow are required", ErrInvalidFile, c.line, i)
		}
	}
	if err := f.loadRegistry(dir); err != nil {
		return nil, err
	}
	if f.Now != "" {
		t, err := time.Parse(time.RFC3339, f.Now)
		if err != nil {
			return nil, fmt.Errorf("%w: now: %v", ErrInvalidFile, err)
		}
		f.now = t
	}
	return &f, nil
}

// loadRegistry resolves the registry key: a path, an inline registry, or
// nothing (the default registry).
func (f *File) loadRegistry(dir string) error {
	n := &f.Registry
	switch {
	case n.Kind == 0:
		f.registry = access.DefaultRegistry()
		return nil
	case n.Kind == yaml.ScalarNode:
		path := n.Value
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		r, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("%w: registry: %v", ErrInvalidFile, err)
		}
		defer r.Close()
		if f.registry, err = access.LoadRegistry(r); err != nil {
			return fmt.Errorf("%w: registry %s: %w", ErrInvalidFile, n.Value, err)
		}
		return nil
	case n.Kind == yaml.MappingNode:
		data, err := yaml.Marshal(n)
		if err != nil {
			return fmt.Errorf("%w: registry: %v", ErrInvalidFile, err)
		}
		// Line numbers in errors count from the registry key.
		if f.registry, err = access.LoadRegistry(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("%w: registry (line %d): %w", ErrInvalidFile, n.Line, err)
		}
		return nil
	}
	return fmt.Errorf("%w: line %d: registry: want a path or a mapping", ErrInvalidFile, n.Line)
}
