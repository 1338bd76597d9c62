package location

import "slices"

// Roots returns the IDs of the top-level locations, sorted.
func (t *Tree) Roots() []string {
	defer t.rlock()()
	var out []string
	for _, n := range t.nodes {
		if !n.removed && n.parent < 0 {
			out = append(out, n.id)
		}
	}
	slices.Sort(out)
	return out
}
