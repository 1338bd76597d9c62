package location

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbx"
)

// Tree is an in-memory copy of the live location tree for the checker:
// IsWithin answers in constant time, and Add, Move and Remove (or Apply)
// update it incrementally after each committed change, never by reloading.
//
// Every location is interned as an int32 index and stores its ancestors
// by depth (anc[d] is its ancestor at depth d, the last entry itself), so
// x lies in y's subtree exactly when depth(y) <= depth(x) and
// anc_x[depth(y)] == y: two map lookups and one comparison, whatever the
// size of the tree. Add costs O(depth), Move O(subtree × depth), Remove
// O(subtree); depth is bounded by the number of levels.
//
// A Tree is safe for concurrent use: readers share a sync.RWMutex that a
// writer holds only for the duration of one update. For lock-free readers,
// publish immutable versions: Clone, update the clone, swap a pointer.
type Tree struct {
	mu      sync.RWMutex
	frozen  bool // set by Freeze: no more writes, reads take no lock
	version int64
	index   map[string]int32
	nodes   []treeNode
	// levels interns level names so that a large tree holds one copy each.
	levels map[string]string
}

type treeNode struct {
	id, name, level string
	parent          int32   // -1 for a top-level location
	anc             []int32 // ancestors by depth; the last entry is the node itself
	children        []int32
	muni            int32 // municipality-level ancestor-or-self, -1 when none
	size            int32 // locations in the subtree, the node included
	removed         bool
}

// NewTree returns an empty tree.
func NewTree() *Tree {
	return &Tree{index: make(map[string]int32), levels: make(map[string]string)}
}

// LoadTree reads every live location of db (prepared by Migrate) into a new
// Tree, together with the tree version the rows reflect.
func LoadTree(ctx context.Context, db *gorm.DB) (*Tree, error) {
	if ctx == nil || db == nil {
		return nil, fmt.Errorf("location: load tree: %w: nil context or database", ErrInvalidInput)
	}
	// Optimistic read: the rows reflect version v when no tree write
	// committed between the two readings of the version.
	for attempt := 0; attempt < loadAttempts; attempt++ {
		before, err := TreeVersion(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("location: load tree: %w", err)
		}
		t, err := loadRows(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("location: load tree: %w", err)
		}
		after, err := TreeVersion(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("location: load tree: %w", err)
		}
		if before == after {
			t.version = after
			return t, nil
		}
	}
	return nil, fmt.Errorf("location: load tree: the tree kept changing during %d attempts", loadAttempts)
}

const loadAttempts = 5

func loadRows(ctx context.Context, db *gorm.DB) (*Tree, error) {
	// Parents sort before their children by depth, so one pass attaches
	// every row.
	rows, err := db.WithContext(ctx).Raw("SELECT id, name, level, parent_id FROM " + LocationsTable +
		" WHERE deleted_at IS NULL ORDER BY depth, id").Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	t := NewTree()
	for rows.Next() {
		l, err := scanLocation(rows)
		if err != nil {
			return nil, err
		}
		if err := t.add(l); err != nil {
			return nil, err
		}
	}
	return t, rows.Err()
}

// Add inserts l under its parent. The error wraps ErrInvalidInput for a
// malformed ID, ErrDuplicate for an ID already in the tree and ErrNotFound
// for a parent that is not.
func (t *Tree) Add(l Location) error {
	if t.frozen {
		return ErrFrozen
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.add(l)
}

func (t *Tree) add(l Location) error {
	if !dbx.ValidID(l.ID) {
		return fmt.Errorf("tree add: %w: id %q", ErrInvalidInput, l.ID)
	}
	if _, ok := t.index[l.ID]; ok {
		return fmt.Errorf("tree add %q: %w", l.ID, ErrDuplicate)
	}
	parent := int32(-1)
	if l.ParentID != "" {
		p, ok := t.index[l.ParentID]
		if !ok {
			return fmt.Errorf("tree add %q: parent %q: %w", l.ID, l.ParentID, ErrNotFound)
		}
		parent = p
	}
	i := int32(len(t.nodes))
	level, ok := t.levels[l.Level]
	if !ok {
		level = l.Level
		t.levels[level] = level
	}
	t.nodes = append(t.nodes, treeNode{id: l.ID, name: l.Name, level: level, parent: parent, muni: -1})
	t.index[l.ID] = i
	if parent >= 0 {
		t.nodes[parent].children = append(t.nodes[parent].children, i)
	}
	t.relink(i)
	t.grow(t.nodes[i].anc, 1)
	return nil
}

// grow adds n to the subtree size of every location in anc.
func (t *Tree) grow(anc []int32, n int32) {
	for _, a := range anc {
		t.nodes[a].size += n
	}
}

// relink recomputes the ancestors and municipality of i from its parent.
func (t *Tree) relink(i int32) {
	n := &t.nodes[i]
	var anc []int32
	muni := int32(-1)
	if n.parent >= 0 {
		p := &t.nodes[n.parent]
		anc = make([]int32, len(p.anc), len(p.anc)+1)
		copy(anc, p.anc)
		muni = p.muni
	}
	n.anc = append(anc, i)
	if n.level == Municipality {
		muni = i
	}
	n.muni = muni
}

// Move makes newParentID ("" for none) the parent of id, taking its subtree
// along. The error wraps ErrNotFound for an unknown id or parent and
// ErrCycle for a parent inside id's subtree. Levels are not checked: the
// Store did that before committing.
func (t *Tree) Move(id, newParentID string) error {
	if t.frozen {
		return ErrFrozen
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.move(id, newParentID)
}

func (t *Tree) move(id, newParentID string) error {
	i, ok := t.index[id]
	if !ok {
		return fmt.Errorf("tree move %q: %w", id, ErrNotFound)
	}
	np := int32(-1)
	if newParentID != "" {
		if np, ok = t.index[newParentID]; !ok {
			return fmt.Errorf("tree move %q: new parent %q: %w", id, newParentID, ErrNotFound)
		}
		if t.within(np, i) {
			return fmt.Errorf("tree move %q: %w: %q lies in its subtree", id, ErrCycle, newParentID)
		}
	}
	n := &t.nodes[i]
	if n.parent == np {
		return nil
	}
	if n.parent >= 0 {
		t.detach(n.parent, i)
		t.grow(n.anc[:len(n.anc)-1], -n.size)
	}
	n.parent = np
	if np >= 0 {
		t.nodes[np].children = append(t.nodes[np].children, i)
	}
	// Parents are relinked before their children (preorder).
	stack := []int32{i}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		t.relink(c)
		stack = append(stack, t.nodes[c].children...)
	}
	if np >= 0 {
		t.grow(t.nodes[np].anc, t.nodes[i].size)
	}
	return nil
}

func (t *Tree) detach(parent, child int32) {
	p := &t.nodes[parent]
	if k := slices.Index(p.children, child); k >= 0 {
		last := len(p.children) - 1
		p.children[k] = p.children[last]
		p.children = p.children[:last]
	}
}

// Remove removes each listed location together with its subtree. IDs not
// in the tree are ignored, so the full list of deleted locations a deletion
// reports (Change.Deleted) may
// be passed as is.
func (t *Tree) Remove(ids ...string) {
	if t.frozen {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.remove(ids...)
}

func (t *Tree) remove(ids ...string) {
	for _, id := range ids {
		i, ok := t.index[id]
		if !ok {
			continue
		}
		if p := t.nodes[i].parent; p >= 0 {
			t.detach(p, i)
			t.grow(t.nodes[p].anc, -t.nodes[i].size)
		}
		stack := []int32{i}
		for len(stack) > 0 {
			c := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			n := &t.nodes[c]
			stack = append(stack, n.children...)
			delete(t.index, n.id)
			// Indexes are never reused, so an index held elsewhere
			// can never come to mean another location.
			*n = treeNode{id: n.id, parent: -1, muni: -1, removed: true}
		}
	}
}

// Apply applies a committed change, as passed to WithOnChange. A change
// stamped with a version moves Version forward to it; Apply itself does not
// reorder or drop changes, so a caller that feeds a Tree from several
// sources compares Change.Version with Version to detect a gap.
func (t *Tree) Apply(c Change) error {
	if t.frozen {
		return ErrFrozen
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var err error
	switch c.Kind {
	case ChangeCreated:
		err = t.add(c.Location)
	case ChangeMoved:
		err = t.move(c.Location.ID, c.Location.ParentID)
	case ChangeDeleted:
		if len(c.Deleted) == 0 {
			t.remove(c.Location.ID)
		} else {
			t.remove(c.Deleted...)
		}
	default:
		err = fmt.Errorf("tree apply: %w: change kind %q", ErrInvalidInput, c.Kind)
	}
	if err == nil && c.Version > t.version {
		t.version = c.Version
	}
	return err
}

// Version returns the highest tree version this Tree is known to reflect:
// the one LoadTree read, or that of the last versioned Change applied, if
// higher. Changes applied through Add, Move, Remove or unversioned Changes
// do not move it.
func (t *Tree) Version() int64 {
	defer t.rlock()()
	return t.version
}

// IsWithin reports whether x lies in the subtree of y, x == y included.
// Unknown IDs lie nowhere. Constant time.
func (t *Tree) IsWithin(x, y string) bool {
	defer t.rlock()()
	xi, ok := t.index[x]
	if !ok {
		return false
	}
	yi, ok := t.index[y]
	return ok && t.within(xi, yi)
}

func (t *Tree) within(x, y int32) bool {
	ax := t.nodes[x].anc
	d := len(t.nodes[y].anc) - 1
	return d < len(ax) && ax[d] == y
}

// Len returns the number of locations in the tree.
func (t *Tree) Len() int {
	defer t.rlock()()
	return len(t.index)
}

// SubtreeSize returns the number of locations in the subtree of id, id
// included; 0 for an unknown id. Constant time: every node keeps its count,
// updated by Add, Move and Remove along the ancestors.
func (t *Tree) SubtreeSize(id string) int {
	defer t.rlock()()
	i, ok := t.index[id]
	if !ok {
		return 0
	}
	return int(t.nodes[i].size)
}

// Get returns the location id.
func (t *Tree) Get(id string) (Location, bool) {
	defer t.rlock()()
	i, ok := t.index[id]
	if !ok {
		return Location{}, false
	}
	return t.location(i), true
}

func (t *Tree) location(i int32) Location {
	n := &t.nodes[i]
	l := Location{ID: n.id, Name: n.name, Level: n.level}
	if n.parent >= 0 {
		l.ParentID = t.nodes[n.parent].id
	}
	return l
}

// Level returns the level of id.
func (t *Tree) Level(id string) (string, bool) {
	defer t.rlock()()
	i, ok := t.index[id]
	if !ok {
		return "", false
	}
	return t.nodes[i].level, true
}

// Parent returns the parent of id ("" for a top-level location) and
// whether id is in the tree.
func (t *Tree) Parent(id string) (string, bool) {
	defer t.rlock()()
	i, ok := t.index[id]
	if !ok {
		return "", false
	}
	if p := t.nodes[i].parent; p >= 0 {
		return t.nodes[p].id, true
	}
	return "", true
}

// Depth returns the number of ancestors of id (0 for a top-level location).
func (t *Tree) Depth(id string) (int, bool) {
	defer t.rlock()()
	i, ok := t.index[id]
	if !ok {
		return 0, false
	}
	return len(t.nodes[i].anc) - 1, true
}

// MunicipalityOf returns the ID of the municipality-level location that is
// id or one of its ancestors; false when id is unknown or has none.
func (t *Tree) MunicipalityOf(id string) (string, bool) {
	defer t.rlock()()
	i, ok := t.index[id]
	if !ok || t.nodes[i].muni < 0 {
		return "", false
	}
	return t.nodes[t.nodes[i].muni].id, true
}

// Ancestors returns the IDs of the ancestors of id, parent first (nil for
// an unknown or top-level location).
func (t *Tree) Ancestors(id string) []string {
	defer t.rlock()()
	i, ok := t.index[id]
	if !ok {
		return nil
	}
	anc := t.nodes[i].anc
	out := make([]string, 0, len(anc)-1)
	for k := len(anc) - 2; k >= 0; k-- {
		out = append(out, t.nodes[anc[k]].id)
	}
	return out
}

// Children returns the IDs of the children of id, sorted.
func (t *Tree) Children(id string) []string {
	defer t.rlock()()
	i, ok := t.index[id]
	if !ok {
		return nil
	}
	out := make([]string, 0, len(t.nodes[i].children))
	for _, c := range t.nodes[i].children {
		out = append(out, t.nodes[c].id)
	}
	slices.Sort(out)
	return out
}

// Locations returns every location of the tree, sorted by ID.
func (t *Tree) Locations() []Location {
	defer t.rlock()()
	out := make([]Location, 0, len(t.index))
	for i := range t.nodes {
		if !t.nodes[i].removed {
			out = append(out, t.location(int32(i)))
		}
	}
	slices.SortFunc(out, func(a, b Location) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Clone returns an independent deep copy of t with the same indexes.
func (t *Tree) Clone() *Tree {
	defer t.rlock()()
	c := &Tree{
		version: t.version,
		index:   make(map[string]int32, len(t.index)),
		nodes:   make([]treeNode, len(t.nodes)),
		levels:  make(map[string]string, len(t.levels)),
	}
	for k, v := range t.index {
		c.index[k] = v
	}
	for k, v := range t.levels {
		c.levels[k] = v
	}
	for i, n := range t.nodes {
		n.anc = slices.Clone(n.anc)
		n.children = slices.Clone(n.children)
		c.nodes[i] = n
	}
	return c
}

// ChangeKind names the kind of a Change.
type ChangeKind string

// The kinds of Change.
const (
	ChangeCreated ChangeKind = "created"
	ChangeMoved   ChangeKind = "moved"
	ChangeDeleted ChangeKind = "deleted"
)

// Change describes one committed write of the tree, for WithOnChange and
// Tree.Apply.
type Change struct {
	Kind ChangeKind
	// Location is the created location, the moved location with its new
	// ParentID, or (ID only) the root of the deleted subtree.
	Location Location
	// Deleted lists every deleted ID, root first (ChangeDeleted only).
	Deleted []string
	// Version is the tree version the change produced (see TreeVersion);
	// 0 for an unversioned change.
	Version int64
}
