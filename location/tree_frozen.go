package location

import "errors"

// ErrFrozen is returned by the write methods of a frozen Tree.
var ErrFrozen = errors.New("location: tree is frozen")

// Freeze makes t immutable: from now on its writes fail with ErrFrozen (or,
// for Remove, do nothing) and its reads take no lock, so any number of
// goroutines read it without contending. The checker publishes frozen
// trees and changes them copy-on-write: Clone (which is not frozen), apply,
// Freeze, swap. Freeze returns t.
func (t *Tree) Freeze() *Tree {
	t.mu.Lock()
	t.frozen = true
	t.mu.Unlock()
	return t
}

// rlock takes the read lock unless t is frozen and returns its release:
// defer t.rlock()().
func (t *Tree) rlock() func() {
	if t.frozen {
		return func() {}
	}
	t.mu.RLock()
	return t.mu.RUnlock
}

// The index accessors below answer for an interned index (see Index) in a
// few nanoseconds; an index out of range or of a removed location gives
// the zero answer (-1 for indexes). On a frozen tree they take no lock; for
// the hottest paths, View returns the same accessors in a form the
// compiler inlines.

// ParentIndex returns the index of i's parent, -1 for a top-level location.
func (t *Tree) ParentIndex(i int32) int32 {
	if !t.frozen {
		defer t.rlock()()
	}
	return t.view().ParentIndex(i)
}

// DepthIndex returns the depth of i (0 for a top-level location).
func (t *Tree) DepthIndex(i int32) int {
	if !t.frozen {
		defer t.rlock()()
	}
	return t.view().DepthIndex(i)
}

// MunicipalityIndex returns the index of i's municipality-level
// ancestor-or-self, -1 when there is none.
func (t *Tree) MunicipalityIndex(i int32) int32 {
	if !t.frozen {
		defer t.rlock()()
	}
	return t.view().MunicipalityIndex(i)
}

// LevelIndex returns the level of i.
func (t *Tree) LevelIndex(i int32) string {
	if !t.frozen {
		defer t.rlock()()
	}
	return t.view().LevelIndex(i)
}

// IDIndex returns the ID of i.
func (t *Tree) IDIndex(i int32) string {
	if !t.frozen {
		defer t.rlock()()
	}
	return t.view().IDIndex(i)
}

// IsWithinIndex is IsWithin on interned indexes (see Index); removed or
// out-of-range indexes lie nowhere.
func (t *Tree) IsWithinIndex(x, y int32) bool {
	if !t.frozen {
		defer t.rlock()()
	}
	return t.view().IsWithinIndex(x, y)
}

// Index returns the interned index of id, stable while id stays in this
// Tree (and its clones); indexes of removed locations are never reused.
func (t *Tree) Index(id string) (int32, bool) {
	if !t.frozen {
		defer t.rlock()()
	}
	return t.view().Index(id)
}

func (t *Tree) view() View { return View{nodes: t.nodes, index: t.index} }

// View is a read-only view of a frozen Tree for hot paths: its accessors
// are those of the Tree, take no lock, call nothing and are small enough
// for the compiler to inline. A View of a tree that is not frozen is empty
// (every answer is the zero answer), since that tree may change under it.
type View struct {
	nodes []treeNode
	index map[string]int32
}

// View returns the view of t, empty unless t is frozen.
func (t *Tree) View() View {
	if !t.frozen {
		return View{}
	}
	return t.view()
}

// Index is Tree.Index.
func (v View) Index(id string) (int32, bool) {
	i, ok := v.index[id]
	return i, ok
}

// LiveIndex reports whether i is the index of a location in the tree.
func (v View) LiveIndex(i int32) bool {
	return uint32(i) < uint32(len(v.nodes)) && !v.nodes[i].removed
}

// ParentIndex is Tree.ParentIndex.
func (v View) ParentIndex(i int32) int32 {
	if !v.LiveIndex(i) {
		return -1
	}
	return v.nodes[i].parent
}

// DepthIndex is Tree.DepthIndex.
func (v View) DepthIndex(i int32) int {
	if !v.LiveIndex(i) {
		return 0
	}
	return len(v.nodes[i].anc) - 1
}

// MunicipalityIndex is Tree.MunicipalityIndex.
func (v View) MunicipalityIndex(i int32) int32 {
	if !v.LiveIndex(i) {
		return -1
	}
	return v.nodes[i].muni
}

// LevelIndex is Tree.LevelIndex.
func (v View) LevelIndex(i int32) string {
	if !v.LiveIndex(i) {
		return ""
	}
	return v.nodes[i].level
}

// IDIndex is Tree.IDIndex.
func (v View) IDIndex(i int32) string {
	if !v.LiveIndex(i) {
		return ""
	}
	return v.nodes[i].id
}

// NameIndex returns the ID of the location of index i, removed or not
// (indexes are never reused, so an index names one location for the
// tree's lifetime and its clones'); "" when i is out of range.
func (v View) NameIndex(i int32) string {
	if uint32(i) >= uint32(len(v.nodes)) {
		return ""
	}
	return v.nodes[i].id
}

// Lineage reports whether one of x and y lies in the other's subtree (or
// is the other), and how many levels apart they are: IsWithinIndex in
// either direction and the difference of depths, in one step. Removed or
// out-of-range indexes are related to nothing.
func (v View) Lineage(x, y int32) (levels int, related bool) {
	if uint32(x) >= uint32(len(v.nodes)) || uint32(y) >= uint32(len(v.nodes)) {
		return 0, false
	}
	// A node's ancestors end with itself, and a removed node has none: the
	// deeper one's ancestor at the other's depth is the other when they
	// are related.
	ax, ay := v.nodes[x].anc, v.nodes[y].anc
	if len(ax) < len(ay) {
		ax, ay = ay, ax
	}
	n := len(ay)
	return len(ax) - n, n > 0 && ax[n-1] == ay[n-1]
}

// IsWithinIndex is Tree.IsWithinIndex.
func (v View) IsWithinIndex(x, y int32) bool {
	if !v.LiveIndex(x) || !v.LiveIndex(y) {
		return false
	}
	ax := v.nodes[x].anc
	d := len(v.nodes[y].anc) - 1
	return uint(d) < uint(len(ax)) && ax[d] == y
}
