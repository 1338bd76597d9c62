package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/location"
)

// Parts names the parts of the snapshot a write changed. Apply gathers
// them from change events, Admin from what its change declares it touches,
// the stores' hooks through the Refresh methods and ApplyLocation; one
// function, ApplyParts, turns them into the next snapshot for all of them.
type Parts struct {
	// Tree holds changes of the location tree as a store made them,
	// applied as they are (the rows need not be read again).
	Tree           []location.Change
	Users          []string // users whose row, profiles or grants changed
	Departments    []string
	Locations      []string // locations to read again, in commit order
	Municipalities []string // module and approval settings to read again
	Affiliations   bool     // organisations and links
	Sessions       bool     // impersonation sessions
	Reload         bool     // everything
}

// Empty reports whether p names no part.
func (p *Parts) Empty() bool {
	return len(p.Tree)+len(p.Users)+len(p.Departments)+len(p.Locations)+len(p.Municipalities) == 0 &&
		!p.Affiliations && !p.Sessions && !p.Reload
}

// ApplyParts reads the parts p names into next through db, which is a
// transaction when Admin builds the snapshot it judges before committing:
// the tree first, so that users are built against it, then settings,
// departments, sessions, affiliations and users.
func ApplyParts(ctx context.Context, db *gorm.DB, next *Snapshot, p Parts) error {
	if p.Reload {
		snap, err := LoadSnapshot(ctx, db, next.Reg, &next.Users)
		if err != nil {
			return err
		}
		snap.Epoch = next.Epoch + 1 // the tree's indexes are new
		*next = *snap
		return nil
	}
	for _, ch := range p.Tree {
		if err := next.ApplyLocation(ch); err != nil {
			return err
		}
	}
	for _, id := range p.Locations {
		if err := syncLocation(ctx, db, next, id); err != nil {
			return err
		}
	}
	for _, id := range p.Municipalities {
		if err := syncMunicipality(ctx, db, next, id); err != nil {
			return err
		}
	}
	if len(p.Departments) > 0 {
		found := map[string]CategorySet{}
		depts := maps.Clone(next.Departments)
		for _, id := range p.Departments {
			if err := loadDepartments(ctx, db, id, found); err != nil {
				return err
			}
			if set, ok := found[id]; ok {
				depts[id] = set
			} else {
				delete(depts, id)
			}
		}
		next.Departments = depts
		// Effective categories, precomputed per profile, change with them.
		changes := map[string]*UserState{}
		next.Users.Each(func(id string, u *UserState) bool {
			for _, r := range u.Profiles {
				if d := r.P.Department.ID(); d != "" && slices.Contains(p.Departments, d) {
					changes[id] = next.rebuilt(u)
					break
				}
			}
			return true
		})
		next.setUsers(changes)
	}
	if p.Sessions {
		ss, err := loadSessions(ctx, db)
		if err != nil {
			return err
		}
		next.Sessions = ss
	}
	if p.Affiliations {
		orgs, links, err := loadAffiliations(ctx, db.WithContext(ctx))
		if err != nil {
			return err
		}
		next.Orgs, next.Links = orgs, links
	}
	if len(p.Users) > 0 {
		changes, err := readUsersFrom(ctx, db, next, slices.Compact(slices.Sorted(slices.Values(p.Users))))
		if err != nil {
			return err
		}
		next.setUsers(changes)
	}
	return nil
}

// readUsersFrom reads the current state of users (nil for a user with no
// row) through db, which may be a transaction: an Admin change reads the
// state it judges from its own transaction. Outside one it runs under
// publishMu, so the last refresh reads the latest commit.
func readUsersFrom(ctx context.Context, db *gorm.DB, snap *Snapshot, userIDs []string) (map[string]*UserState, error) {
	db = db.WithContext(ctx)
	out := make(map[string]*UserState, len(userIDs))
	for _, id := range userIDs {
		if id == "" {
			continue
		}
		var state *UserState
		if err := scanUsers(ctx, db, id, func(_ string, u *UserState) { state = u }); err != nil {
			return nil, err
		}
		if state != nil && !state.Deleted {
			if err := scanProfiles(ctx, db, snap.Tree, id, func(_ []byte, r profileRef, unknown string) {
				state.addProfile(r, unknown)
			}); err != nil {
				return nil, err
			}
			if err := scanGrants(ctx, db, snap.Reg, snap.Tree, id, func(_ []byte, g Grant, unknown string) {
				state.addGrant(g, unknown)
			}); err != nil {
				return nil, err
			}
			snap.BuildUser(state)
		}
		out[id] = state
	}
	return out, nil
}

// ApplyLocation replaces next.tree by a copy with ch applied, and builds
// again the users whose counted grants the change may alter: for a move or
// a deletion, those holding something in the subtree; for a creation,
// those naming a location the tree did not hold.
func (next *Snapshot) ApplyLocation(ch location.Change) error {
	var affected []*UserState
	switch ch.Kind {
	case location.ChangeCreated:
		for id := range next.Users.pending {
			if u, ok := next.Users.Get(id); ok {
				affected = append(affected, u)
			}
		}
	default:
		next.Users.Each(func(_ string, u *UserState) bool {
			if u.HoldsWithin(next, ch.Location.ID) {
				affected = append(affected, u)
			}
			return true
		})
	}
	t := next.Tree.Clone()
	if err := t.Apply(ch); err != nil {
		return fmt.Errorf("apply location change: %w", err)
	}
	next.setTree(t)
	if ch.Kind == location.ChangeDeleted {
		next.Epoch++ // the removed locations' indexes name nothing any more
	}
	next.reindexDisabled()
	if len(affected) > 0 {
		changes := make(map[string]*UserState, len(affected))
		for _, u := range affected {
			changes[u.ID] = next.rebuilt(u)
		}
		next.setUsers(changes)
	}
	return nil
}

// AddEvent adds the parts of the snapshot an event changed.
func (p *Parts) AddEvent(ev audit.Event) {
	switch ev.Type {
	case audit.TypeLogin, audit.TypeLoginFailed, audit.TypeLogout, audit.TypePasswordChanged,
		audit.TypeAPIKeyCreated, audit.TypeAPIKeyRevoked, audit.TypeRegistryChanged,
		audit.TypeDecisionDenied, audit.TypeDecisionAllowed, audit.TypeDecisionsDropped:
		return // nothing a decision reads (the registry is each process's configuration)
	case audit.TypeDepartmentCreated:
		if id, ok := ev.Details["department_id"].(string); ok {
			p.Departments = append(p.Departments, id)
		} else {
			p.Reload = true
		}
	case audit.TypeLocationCreated, audit.TypeLocationMoved, audit.TypeLocationDeleted:
		p.Locations = append(p.Locations, ev.LocationID)
	case audit.TypeModuleEnabled, audit.TypeApprovalRequired:
		p.Municipalities = append(p.Municipalities, ev.LocationID)
	case audit.TypeImpersonationStart, audit.TypeImpersonationStop:
		p.Sessions = true
	case audit.TypeLink, audit.TypeUnlink, audit.TypeOrganisationCreated, audit.TypeOrganisationDeleted,
		affiliation.TypeOrganisationUpdated:
		p.Affiliations = true
	case audit.TypeUserDeleted:
		p.Sessions, p.Affiliations = true, true
	case audit.TypeUserActive, audit.TypeSuperAdmin:
		p.Sessions = true // deactivating an admin or taking the flag ends its sessions
	}
	if ev.UserID != "" {
		p.Users = append(p.Users, ev.UserID)
	}
}

// syncLocation applies the current state of location id (and its subtree)
// to next's tree and, for a deleted subtree, reads again whoever held
// something in it.
func syncLocation(ctx context.Context, db *gorm.DB, next *Snapshot, id string) error {
	var (
		loc      location.Location
		parent   sql.NullString
		deleted  int
		notFound bool
	)
	err := db.WithContext(ctx).Raw(`SELECT id, name, level, parent_id, CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END FROM `+
		location.LocationsTable+` WHERE id = ?`, id).Row().Scan(&loc.ID, &loc.Name, &loc.Level, &parent, &deleted)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		notFound = true
	case err != nil:
		return fmt.Errorf("read location: %w", err)
	}
	loc.ParentID = parent.String
	current, known := next.Tree.Get(id)
	switch {
	case notFound || deleted != 0:
		if !known {
			return nil
		}
		var affected []string
		next.Users.Each(func(uid string, u *UserState) bool {
			if u.HoldsWithin(next, id) {
				affected = append(affected, uid)
			}
			return true
		})
		if err := next.ApplyLocation(location.Change{Kind: location.ChangeDeleted, Location: location.Location{ID: id}}); err != nil {
			return err
		}
		return ApplyParts(ctx, db, next, Parts{Users: affected, Affiliations: true})
	case !known:
		return next.ApplyLocation(location.Change{Kind: location.ChangeCreated, Location: loc})
	case current.ParentID != loc.ParentID:
		return next.ApplyLocation(location.Change{Kind: location.ChangeMoved, Location: loc})
	}
	return nil
}

// syncMunicipality reads again the module and approval settings of a
// municipality into next.
func syncMunicipality(ctx context.Context, db *gorm.DB, next *Snapshot, id string) error {
	var modules []ModuleSettingRow
	if err := db.WithContext(ctx).Where("municipality_id = ?", id).Find(&modules).Error; err != nil {
		return fmt.Errorf("read module settings: %w", err)
	}
	var approval []MunicipalitySettingRow
	if err := db.WithContext(ctx).Where("municipality_id = ?", id).Find(&approval).Error; err != nil {
		return fmt.Errorf("read municipality settings: %w", err)
	}
	for module := range next.Disabled {
		next.withModuleEnabled(id, module, true)
	}
	for _, r := range modules {
		next.withModuleEnabled(id, r.Module, r.Enabled)
	}
	off := maps.Clone(next.ApprovalOff)
	delete(off, id)
	for _, r := range approval {
		if !r.ApprovalRequired {
			off[id] = struct{}{}
		}
	}
	next.ApprovalOff = off
	return nil
}
