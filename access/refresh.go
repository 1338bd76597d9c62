package access

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/location"
)

// The methods below bring the snapshot in step with committed writes. The
// stores of a Platform call them after each commit (townhall.Open wires
// that); a host that writes townhall's tables by other means calls them
// itself. Each reads only the rows of the changed entity.

// RefreshUser reloads one user, with its profiles and grants, from the
// database.
func (c *Checker) RefreshUser(ctx context.Context, userID string) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	db := c.db.WithContext(ctx)
	c.mu.RLock()
	reg := c.snap.reg
	c.mu.RUnlock()

	var state *userState
	row := db.Raw(userQuery+" WHERE id = ?", userID).Row()
	_, u, err := scanUser(row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		state = nil // never existed: forget it
	case err != nil:
		return err
	default:
		state = u
	}
	if state != nil && !state.deleted {
		if err := eachProfile(db.Raw(profileQuery+" AND user_id = ?", userID), func(_, loc string, p *profileState) {
			state.profiles[loc] = p
		}); err != nil {
			return err
		}
		if err := eachGrant(db.Raw(grantQuery+" AND v0 = ?", policy.UserKey(userID)), reg, func(_ string, g grant) {
			state.grants = append(state.grants, g)
		}); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if state == nil {
		delete(c.snap.users, userID)
	} else {
		c.snap.users[userID] = state
	}
	c.mu.Unlock()
	return nil
}

// RefreshDepartment reloads one department's categories.
func (c *Checker) RefreshDepartment(ctx context.Context, departmentID string) error {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	found := map[string]categorySet{}
	if err := loadDepartments(c.db.WithContext(ctx).Raw(departmentQuery+" WHERE id = ?", departmentID), found); err != nil {
		return err
	}
	c.mu.Lock()
	if set, ok := found[departmentID]; ok {
		c.snap.departments[departmentID] = set
	} else {
		delete(c.snap.departments, departmentID)
	}
	c.mu.Unlock()
	return nil
}

// ApplyLocation applies a committed change of the location tree.
func (c *Checker) ApplyLocation(ch location.Change) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.snap.tree.Apply(ch); err != nil {
		return fmt.Errorf("apply location change: %w", err)
	}
	return nil
}
