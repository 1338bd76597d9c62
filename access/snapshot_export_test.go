package access

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// SnapshotInvariant reports the first place where the published snapshot
// holds a grant or profile at a location its tree does not have: what a
// check would see if a location deletion were applied without the users it
// ends (a half-applied change). Tests only.
func SnapshotInvariant(c *Checker) error {
	snap := c.snapshot()
	var err error
	snap.users.each(func(id string, u *userState) bool {
		for _, g := range u.grants {
			at := snap.grantAt(u, &g)
			if _, ok := snap.tree.Index(at); !g.platform() && !ok {
				err = fmt.Errorf("user %s holds a grant at %s, which the tree lacks", id, at)
				return false
			}
		}
		for _, p := range u.profiles {
			at := snap.locOf(u, p.p.loc)
			if _, ok := snap.tree.Index(at); !ok {
				err = fmt.Errorf("user %s has a profile at %s, which the tree lacks", id, at)
				return false
			}
		}
		return true
	})
	return err
}

// SnapshotDiff compares the published snapshot with a fresh load from the
// database and describes the first difference. Tests only.
func SnapshotDiff(ctx context.Context, c *Checker) error {
	have := c.snapshot()
	want, err := loadSnapshot(ctx, c.db, have.reg, nil)
	if err != nil {
		return err
	}
	if a, b := describeTree(have), describeTree(want); a != b {
		return fmt.Errorf("trees differ:\n%s\nvs fresh\n%s", a, b)
	}
	if a, b := describeUsers(have), describeUsers(want); a != b {
		return fmt.Errorf("users differ:\n%s\nvs fresh\n%s", a, b)
	}
	if !maps.EqualFunc(have.disabled, want.disabled, func(a, b map[string]struct{}) bool { return maps.Equal(a, b) }) {
		return fmt.Errorf("module settings differ: %v vs %v", have.disabled, want.disabled)
	}
	if !maps.Equal(have.approvalOff, want.approvalOff) {
		return fmt.Errorf("approval settings differ")
	}
	return nil
}

func describeTree(s *snapshot) string {
	var b strings.Builder
	for _, l := range s.tree.Locations() {
		fmt.Fprintf(&b, "%s<%s:%s ", l.ID, l.ParentID, l.Level)
	}
	return b.String()
}

func describeUsers(s *snapshot) string {
	var lines []string
	s.users.each(func(id string, u *userState) bool {
		var parts []string
		for _, g := range u.grants {
			parts = append(parts, s.reg.roles[g.role].name+"@"+s.grantAt(u, &g))
		}
		for _, p := range u.profiles {
			parts = append(parts, fmt.Sprintf("profile@%s:%v/%v/%s/%d", s.locOf(u, p.p.loc), p.p.approved, p.p.active, p.p.department.id(), len(p.p.allowed)))
		}
		for _, g := range u.grants {
			if g.counts() {
				k, _ := s.anchorRef(u, g.loc)
				parts = append(parts, fmt.Sprintf("counted:%s@%s/%d/%s", s.reg.roles[g.role].name, s.tree.IDIndex(g.loc), g.flags, s.locOf(u, u.profiles[k].p.loc)))
			}
		}
		if s.users.at(u.idx) != u {
			parts = append(parts, "not at its index")
		}
		slices.Sort(parts)
		lines = append(lines, fmt.Sprintf("%s deleted=%v active=%v super=%v tech=%v %v", id, u.deleted, u.active, u.superAdmin, u.technical, parts))
		return true
	})
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// Reload replaces the checker's snapshot with a fresh load, as Sync does
// for a replica far behind. Tests only.
func Reload(ctx context.Context, c *Checker) error { return c.reload(ctx) }

// TouchUser reads what every decision on p reads before deciding anything:
// the published snapshot and the subject's record in it. Benchmarks only
// (BenchmarkDecideFloor).
func TouchUser(c *Checker, p Principal) bool {
	u := c.snapshot().users.at(p.user - 1)
	return u != nil && u.active
}
