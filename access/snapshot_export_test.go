package access

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/civicstack/townhall/internal/snapshot"
)

// SnapshotInvariant reports the first place where the published snapshot
// holds a grant or profile at a location its tree does not have: what a
// check would see if a location deletion were applied without the users it
// ends (a half-applied change). Tests only.
func SnapshotInvariant(c *Checker) error {
	snap := c.snapshot()
	var err error
	snap.Users.Each(func(id string, u *snapshot.UserState) bool {
		for _, g := range u.Grants {
			at := snap.GrantAt(u, &g)
			if _, ok := snap.Tree.Index(at); !g.Platform() && !ok {
				err = fmt.Errorf("user %s holds a grant at %s, which the tree lacks", id, at)
				return false
			}
		}
		for _, p := range u.Profiles {
			at := snap.LocOf(u, p.P.Loc)
			if _, ok := snap.Tree.Index(at); !ok {
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
	want, err := snapshot.LoadSnapshot(ctx, c.db, have.Reg, nil)
	if err != nil {
		return err
	}
	if a, b := describeTree(have), describeTree(want); a != b {
		return fmt.Errorf("trees differ:\n%s\nvs fresh\n%s", a, b)
	}
	if a, b := describeUsers(have), describeUsers(want); a != b {
		return fmt.Errorf("users differ:\n%s\nvs fresh\n%s", a, b)
	}
	if !maps.EqualFunc(have.Disabled, want.Disabled, func(a, b map[string]struct{}) bool { return maps.Equal(a, b) }) {
		return fmt.Errorf("module settings differ: %v vs %v", have.Disabled, want.Disabled)
	}
	if !maps.Equal(have.ApprovalOff, want.ApprovalOff) {
		return fmt.Errorf("approval settings differ")
	}
	return nil
}

func describeTree(s *snapshot.Snapshot) string {
	var b strings.Builder
	for _, l := range s.Tree.Locations() {
		fmt.Fprintf(&b, "%s<%s:%s ", l.ID, l.ParentID, l.Level)
	}
	return b.String()
}

func describeUsers(s *snapshot.Snapshot) string {
	var lines []string
	s.Users.Each(func(id string, u *snapshot.UserState) bool {
		var parts []string
		for _, g := range u.Grants {
			parts = append(parts, s.Reg.Roles[g.Role].Name+"@"+s.GrantAt(u, &g))
		}
		for _, p := range u.Profiles {
			parts = append(parts, fmt.Sprintf("profile@%s:%v/%v/%s/%d", s.LocOf(u, p.P.Loc), p.P.Approved, p.P.Active, p.P.Department.ID(), len(p.P.Allowed)))
		}
		for _, g := range u.Grants {
			if g.Counts() {
				k, _ := s.AnchorRef(u, g.Loc)
				parts = append(parts, fmt.Sprintf("counted:%s@%s/%d/%s", s.Reg.Roles[g.Role].Name, s.Tree.IDIndex(g.Loc), g.Flags, s.LocOf(u, u.Profiles[k].P.Loc)))
			}
		}
		if s.Users.At(u.Idx) != u {
			parts = append(parts, "not at its index")
		}
		slices.Sort(parts)
		lines = append(lines, fmt.Sprintf("%s deleted=%v active=%v super=%v tech=%v %v", id, u.Deleted, u.Active, u.SuperAdmin, u.Technical, parts))
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
	u := c.snapshot().Users.At(p.user - 1)
	return u != nil && u.Active
}
