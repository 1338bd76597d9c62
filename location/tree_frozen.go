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
// the zero answer (-1 for indexes). They are meant for frozen trees on hot
// paths, and take no lock on them.

// ParentIndex returns the index of i's parent, -1 for a top-level location.
func (t *Tree) ParentIndex(i int32) int32 {
	defer t.rlock()()
	if !t.live(i) {
		return -1
	}
	return t.nodes[i].parent
}

// DepthIndex returns the depth of i (0 for a top-level location).
func (t *Tree) DepthIndex(i int32) int {
	defer t.rlock()()
	if !t.live(i) {
		return 0
	}
	return len(t.nodes[i].anc) - 1
}

// MunicipalityIndex returns the index of i's municipality-level
// ancestor-or-self, -1 when there is none.
func (t *Tree) MunicipalityIndex(i int32) int32 {
	defer t.rlock()()
	if !t.live(i) {
		return -1
	}
	return t.nodes[i].muni
}

// LevelIndex returns the level of i.
func (t *Tree) LevelIndex(i int32) string {
	defer t.rlock()()
	if !t.live(i) {
		return ""
	}
	return t.nodes[i].level
}

// IDIndex returns the ID of i.
func (t *Tree) IDIndex(i int32) string {
	defer t.rlock()()
	if !t.live(i) {
		return ""
	}
	return t.nodes[i].id
}

func (t *Tree) live(i int32) bool {
	return i >= 0 && int(i) < len(t.nodes) && !t.nodes[i].removed
}
