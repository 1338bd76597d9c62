package access

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/location"
)

// The methods below bring the snapshot in step with committed writes. The
// stores of a Platform call them after each commit (townhall.Open wires
// that); a host that writes townhall's tables by other means calls them
// itself. Each reads only the rows of the changed entities and publishes
// one new snapshot, so a check sees all of a change or none of it.

// parts names the parts of the snapshot a write changed. Apply gathers
// them from change events, Admin from what its change declares it touches,
// the stores' hooks through the Refresh methods and ApplyLocation; one
// function, applyParts, turns them into the next snapshot for all of them.
type parts struct {
	// tree holds changes of the location tree as a store made them,
	// applied as they are (the rows need not be read again).
	tree           []location.Change
	users          []string // users whose row, profiles or grants changed
	departments    []string
	locations      []string // locations to read again, in commit order
	municipalities []string // module and approval settings to read again
	affiliations   bool     // organisations and links
	sessions       bool     // impersonation sessions
	reload         bool     // everything
}

func (p *parts) empty() bool {
	return len(p.tree)+len(p.users)+len(p.departments)+len(p.locations)+len(p.municipalities) == 0 &&
		!p.affiliations && !p.sessions && !p.reload
}

// refresh reads the parts p names and publishes them as one snapshot.
func (c *Checker) refresh(ctx context.Context, p parts) error {
	return c.publish(func(next *snapshot) error { return applyParts(ctx, c.db, next, p) })
}

// applyParts reads the parts p names into next through db, which is a
// transaction when Admin builds the snapshot it judges before committing:
// the tree first, so that users are built against it, then settings,
// departments, sessions, affiliations and users.
func applyParts(ctx context.Context, db *gorm.DB, next *snapshot, p parts) error {
	if p.reload {
		snap, err := loadSnapshot(ctx, db, next.reg, &next.users)
		if err != nil {
			return err
		}
		snap.epoch = next.epoch + 1 // the tree's indexes are new
		*next = *snap
		return nil
	}
	for _, ch := range p.tree {
		if err := next.applyLocation(ch); err != nil {
			return err
		}
	}
	for _, id := range p.locations {
		if err := syncLocation(ctx, db, next, id); err != nil {
			return err
		}
	}
	for _, id := range p.municipalities {
		if err := syncMunicipality(ctx, db, next, id); err != nil {
			return err
		}
	}
	if len(p.departments) > 0 {
		found := map[string]categorySet{}
		depts := maps.Clone(next.departments)
		for _, id := range p.departments {
			if err := loadDepartments(ctx, db, id, found); err != nil {
				return err
			}
			if set, ok := found[id]; ok {
				depts[id] = set
			} else {
				delete(depts, id)
			}
		}
		next.departments = depts
		// Effective categories, precomputed per profile, change with them.
		changes := map[string]*userState{}
		next.users.each(func(id string, u *userState) bool {
			for _, r := range u.profiles {
				if d := r.p.department.id(); d != "" && slices.Contains(p.departments, d) {
					changes[id] = next.rebuilt(u)
					break
				}
			}
			return true
		})
		next.setUsers(changes)
	}
	if p.sessions {
		ss, err := loadSessions(ctx, db)
		if err != nil {
			return err
		}
		next.sessions = ss
	}
	if p.affiliations {
		orgs, links, err := loadAffiliations(ctx, db.WithContext(ctx))
		if err != nil {
			return err
		}
		next.orgs, next.links = orgs, links
	}
	if len(p.users) > 0 {
		changes, err := readUsersFrom(ctx, db, next, slices.Compact(slices.Sorted(slices.Values(p.users))))
		if err != nil {
			return err
		}
		next.setUsers(changes)
	}
	return nil
}

// RefreshUser reloads users, with their profiles and grants, from the
// database.
func (c *Checker) RefreshUser(ctx context.Context, userIDs ...string) error {
	return c.refresh(ctx, parts{users: userIDs})
}

// readUsersFrom reads the current state of users (nil for a user with no
// row) through db, which may be a transaction: an Admin change reads the
// state it judges from its own transaction. Outside one it runs under
// publishMu, so the last refresh reads the latest commit.
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
			if err := scanProfiles(ctx, db, snap.tree, id, func(_ []byte, r profileRef, unknown string) {
				state.addProfile(r, unknown)
			}); err != nil {
				return nil, err
			}
			if err := scanGrants(ctx, db, snap.reg, snap.tree, id, func(_ []byte, g grant, unknown string) {
				state.addGrant(g, unknown)
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
	return c.refresh(ctx, parts{departments: []string{departmentID}})
}

// ApplyLocation applies a committed change of the location tree: the tree
// is cloned, changed and frozen (location changes are rare next to checks;
// the clone costs O(locations)).
func (c *Checker) ApplyLocation(ch location.Change) error {
	return c.refresh(context.Background(), parts{tree: []location.Change{ch}})
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
	if ch.Kind == location.ChangeDeleted {
		next.epoch++ // the removed locations' indexes name nothing any more
	}
	next.reindexDisabled()
	if len(affected) > 0 {
		changes := make(map[string]*userState, len(affected))
		for _, u := range affected {
			changes[u.id] = next.rebuilt(u)
		}
		next.setUsers(changes)
	}
	return nil
}
