package access

import (
	"context"
	"fmt"
	"maps"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/location"
)

// The methods below bring the snapshot in step with committed writes. The
// stores of a Platform call them after each commit (townhall.Open wires
// that); a host that writes townhall's tables by other means calls them
// itself. Each reads only the rows of the changed entities and publishes
// one new snapshot, so a check sees all of a change or none of it.

// RefreshUser reloads users, with their profiles and grants, from the
// database.
func (c *Checker) RefreshUser(ctx context.Context, userIDs ...string) error {
	return c.publish(func(next *snapshot) error {
		changes, err := c.readUsers(ctx, next, userIDs)
		if err != nil {
			return err
		}
		next.users = next.users.with(changes)
		return nil
	})
}

// readUsers reads the current state of users (nil for a user with no row).
// It runs under publishMu, so the last refresh reads the latest commit.
func (c *Checker) readUsers(ctx context.Context, snap *snapshot, userIDs []string) (map[string]*userState, error) {
	return readUsersFrom(ctx, c.db, snap, userIDs)
}

// readUsersFrom is readUsers through db, which may be a transaction: an
// Admin change reads the state it judges from its own transaction.
func readUsersFrom(ctx context.Context, db *gorm.DB, snap *snapshot, userIDs []string) (map[string]*userState, error) {
	db = db.WithContext(ctx)
	out := make(map[string]*userState, len(userIDs))
	for _, id := range userIDs {
		if id == "" {
			continue
		}
		var state *userState
		if err := scanUsers(ctx, db, id, func(_ string, u *userState) { state = u }); err != nil {
			return nil, err
		}
		if state != nil && !state.deleted {
			if err := scanProfiles(ctx, db, snap.tree, id, func(_ []byte, r profileRef) {
				state.profiles = append(state.profiles, r)
			}); err != nil {
				return nil, err
			}
			if err := scanGrants(ctx, db, snap.reg, snap.tree, id, func(_ []byte, g grant) {
				state.grants = append(state.grants, g)
			}); err != nil {
				return nil, err
			}
			snap.buildUser(state)
		}
		out[id] = state
	}
	return out, nil
}

// RefreshDepartment reloads one department's categories.
func (c *Checker) RefreshDepartment(ctx context.Context, departmentID string) error {
	return c.publish(func(next *snapshot) error {
		found := map[string]categorySet{}
		if err := loadDepartments(ctx, c.db, departmentID, found); err != nil {
			return err
		}
		depts := maps.Clone(next.departments)
		if set, ok := found[departmentID]; ok {
			depts[departmentID] = set
		} else {
			delete(depts, departmentID)
		}
		next.departments = depts
		return nil
	})
}

// ApplyLocation applies a committed change of the location tree: the tree
// is cloned, changed and frozen (location changes are rare next to checks;
// the clone costs O(locations)).
func (c *Checker) ApplyLocation(ch location.Change) error {
	return c.publish(func(next *snapshot) error { return next.applyLocation(ch) })
}

// applyLocation replaces next.tree by a copy with ch applied, and builds
// again the users whose counted grants the change may alter: for a move or
// a deletion, those holding something in the subtree; for a creation,
// those naming a location the tree did not hold.
func (next *snapshot) applyLocation(ch location.Change) error {
	var affected []*userState
	switch ch.Kind {
	case location.ChangeCreated:
		for id := range next.users.pending {
			if u, ok := next.users.get(id); ok {
				affected = append(affected, u)
			}
		}
	default:
		next.users.each(func(_ string, u *userState) bool {
			if u.holdsWithin(next, ch.Location.ID) {
				affected = append(affected, u)
			}
			return true
		})
	}
	t := next.tree.Clone()
	if err := t.Apply(ch); err != nil {
		return fmt.Errorf("apply location change: %w", err)
	}
	next.setTree(t)
	next.reindexDisabled()
	if len(affected) > 0 {
		changes := make(map[string]*userState, len(affected))
		for _, u := range affected {
			changes[u.id] = next.rebuilt(u)
		}
		next.users = next.users.with(changes)
	}
	return nil
}

// refreshInto reads affected users and the affiliations into next.
func (c *Checker) refreshInto(ctx context.Context, next *snapshot, affected []string) error {
	changes, err := c.readUsers(ctx, next, affected)
	if err != nil {
		return err
	}
	next.users = next.users.with(changes)
	next.orgs, next.links, err = loadAffiliations(ctx, c.db.WithContext(ctx))
	return err
}
