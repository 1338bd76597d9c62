package access

import (
	"context"

	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/location"
)

// The methods below bring the snapshot in step with committed writes. The
// stores of a Platform call them after each commit (townhall.Open wires
// that); a host that writes townhall's tables by other means calls them
// itself. Each reads only the rows of the changed entities and publishes
// one new snapshot, so a check sees all of a change or none of it.

// refresh reads the parts p names and publishes them as one snapshot.
func (c *Checker) refresh(ctx context.Context, p snapshot.Parts) error {
	return c.publish(func(next *snapshot.Snapshot) error { return snapshot.ApplyParts(ctx, c.db, next, p) })
}

// RefreshUser reloads users, with their profiles and grants, from the
// database.
func (c *Checker) RefreshUser(ctx context.Context, userIDs ...string) error {
	return c.refresh(ctx, snapshot.Parts{Users: userIDs})
}

// RefreshDepartment reloads one department's categories.
func (c *Checker) RefreshDepartment(ctx context.Context, departmentID string) error {
	return c.refresh(ctx, snapshot.Parts{Departments: []string{departmentID}})
}

// ApplyLocation applies a committed change of the location tree: the tree
// is cloned, changed and frozen (location changes are rare next to checks;
// the clone costs O(locations)).
func (c *Checker) ApplyLocation(ch location.Change) error {
	return c.refresh(context.Background(), snapshot.Parts{Tree: []location.Change{ch}})
}
