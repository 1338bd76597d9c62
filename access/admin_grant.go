package access

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/users"
)

// Membership is a profile with its first grant, as AddMember creates it.
type Membership struct {
	UserID, LocationID, Role, DepartmentID string
	AllowedCategories                      []string
}

// AddMember creates the membership's profile and its first grant in one
// transaction. The profile starts unapproved when its place requires
// approval (see SetApprovalRequired). The actor needs what Grant needs for
// the role, and the membership's effective categories must lie within the
// actor's own effective categories there. Whatever the user gains through
// the new profile (it may anchor grants the user already holds) must be
// something the actor could grant. A user has at most one profile per
// location (users.ErrDuplicate).
func (a *Admin) AddMember(ctx context.Context, actor Subject, m Membership) (*users.Profile, error) {
	m.Role = canonicalRole(m.Role)
	var out *users.Profile
	var approval bool
	var ri int
	g := &guarded{
		ch:    change{typ: audit.TypeMemberAdded, userID: m.UserID, location: m.LocationID, role: m.Role},
		users: []string{m.UserID},
		write: func(tx *gorm.DB) ([]string, error) {
			p, err := txwrite.CreateProfile(ctx, tx, a.profiles, users.Profile{
				UserID: m.UserID, LocationID: m.LocationID, DepartmentID: m.DepartmentID,
				AllowedCategories: m.AllowedCategories, IsApproved: !approval, IsActive: true,
			})
			if err != nil {
				return nil, err
			}
			out = p
			_, err = insertGrant(tx, m.UserID, m.Role, m.LocationID)
			return nil, err
		},
	}
	err := a.guard(ctx, actor, g, func(snap *snapshot.Snapshot) error {
		target, err := liveUser(snap, m.UserID)
		if err != nil {
			return err
		}
		if m.LocationID == policy.PlatformDomain {
			return fmt.Errorf("%w: memberships are at locations, not platform-wide", ErrInvalidInput)
		}
		if ri, err = checkRolePlace(snap, m.Role, m.LocationID); err != nil {
			return err
		}
		approval = approvalRequired(snap, m.LocationID)
		return checkMembership(snap, target, m)
	}, func(snap *snapshot.Snapshot, st actorState) error {
		if err := mayGrant(snap, st, ri, m.LocationID); err != nil {
			return err
		}
		if !st.privileged() && !categoriesWithin(snap, st.user, m.LocationID, m.AllowedCategories, m.DepartmentID) {
			return fmt.Errorf("%w: categories beyond the actor's own", ErrForbidden)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkMembership validates what AddMember would otherwise learn only from
// the store, so that bad input is never mistaken for a refusal.
func checkMembership(snap *snapshot.Snapshot, target *snapshot.UserState, m Membership) error {
	for _, c := range m.AllowedCategories {
		if !dbx.ValidID(c) {
			return fmt.Errorf("%w: category %q", ErrInvalidInput, truncateID(c))
		}
	}
	if m.DepartmentID != "" {
		if !dbx.ValidID(m.DepartmentID) {
			return fmt.Errorf("%w: department %q", ErrInvalidInput, truncateID(m.DepartmentID))
		}
		if _, ok := snap.Departments[m.DepartmentID]; !ok {
			return fmt.Errorf("%w: department %q", users.ErrNotFound, m.DepartmentID)
		}
	}
	if _, ok := snap.Profile(target, m.LocationID); ok {
		return fmt.Errorf("%w: user %q already has a profile at %q", users.ErrDuplicate, m.UserID, m.LocationID)
	}
	return nil
}

// categoriesWithin reports whether the effective categories of a new
// membership lie within the actor's own effective categories at loc (the
// union over the anchor profiles of the actor's grants counting there).
func categoriesWithin(snap *snapshot.Snapshot, u *snapshot.UserState, loc string, allowed []string, department string) bool {
	_, anchors := counting(snap, u, loc)
	own := snapshot.CategorySet{}
	for _, p := range anchors {
		if p == nil || snap.UnrestrictedCategories(p) {
			return true // a platform grant or an unrestricted anchor sees every category
		}
		for cat := range effective(snap, p) {
			own[cat] = struct{}{}
		}
	}
	target := &snapshot.ProfileState{Allowed: snapshot.NewCategorySet(allowed), Department: snapshot.DeptOf(department)}
	if snap.UnrestrictedCategories(target) {
		return false
	}
	for cat := range effective(snap, target) {
		if _, ok := own[cat]; !ok {
			return false
		}
	}
	return true
}

// effective returns the effective categories of a restricted profile.
func effective(snap *snapshot.Snapshot, p *snapshot.ProfileState) snapshot.CategorySet {
	cats, _ := snap.EffectiveCategories(p)
	return snapshot.NewCategorySet(cats)
}

// approvalRequired reports whether a new profile at loc starts unapproved:
// at or below a municipality it follows that municipality's setting; above
// the municipality level it always does.
func approvalRequired(snap *snapshot.Snapshot, loc string) bool {
	muni, ok := snap.Tree.MunicipalityOf(loc)
	if !ok {
		return true
	}
	_, off := snap.ApprovalOff[muni]
	return !off
}

// Grant gives userID role at locationID ("*" for platform roles). Only super
// admins grant platform and reserved roles; a platform_admin grants any
// other role anywhere; anyone else needs users:manage covering the location
// and may grant only a role whose permissions there are a subset of their
// own. A role at a location counts only through the user's anchor profile
// there: a grant with none is ErrInvalidInput. Whatever the user gains (the
// anchor profile's categories included) must be something the actor could
// grant. Granting a role already held changes nothing (the grant is still
// audited, with Details["unchanged"] = true); so does the loser of two
// identical grants made at once, on any process or node.
func (a *Admin) Grant(ctx context.Context, actor Subject, userID, role, locationID string) error {
	return a.changeGrant(ctx, actor, audit.TypeGrant, userID, role, locationID)
}

// Revoke takes role at locationID away from userID, under the rules of
// Grant. Revoking a role not held changes nothing (the revocation is still
// audited, with Details["unchanged"] = true).
func (a *Admin) Revoke(ctx context.Context, actor Subject, userID, role, locationID string) error {
	return a.changeGrant(ctx, actor, audit.TypeRevoke, userID, role, locationID)
}

func (a *Admin) changeGrant(ctx context.Context, actor Subject, typ, userID, role, loc string) error {
	role = canonicalRole(role)
	var ri int
	details := map[string]any{}
	g := &guarded{
		ch:    change{typ: typ, userID: userID, location: loc, role: role, details: details},
		users: []string{userID},
		write: func(tx *gorm.DB) ([]string, error) {
			var changed bool
			var err error
			if typ == audit.TypeGrant {
				changed, err = insertGrant(tx, userID, role, loc)
			} else {
				changed, err = policy.DeleteGrant(tx, policy.Grant{UserID: userID, Role: role, Domain: loc})
			}
			// A grant already held (or a revocation of one not held, a
			// concurrent identical change committed first among them) is
			// still audited, saying that it changed nothing.
			delete(details, "unchanged") // dbx.Retry may run this again
			if err == nil && !changed {
				details["unchanged"] = true
			}
			return nil, err
		},
	}
	return a.guard(ctx, actor, g, func(snap *snapshot.Snapshot) error {
		target, err := liveUser(snap, userID)
		if err != nil {
			return err
		}
		if ri, err = checkRolePlace(snap, role, loc); err != nil {
			return err
		}
		if typ == audit.TypeGrant && loc != policy.PlatformDomain {
			if p, _ := snap.Anchor(target, loc); p == nil {
				return fmt.Errorf("%w: no profile anchors this grant: %q has no profile at or above %q", ErrInvalidInput, userID, loc)
			}
		}
		return nil
	}, func(snap *snapshot.Snapshot, st actorState) error {
		return mayGrant(snap, st, ri, loc)
	})
}

// mayGrant applies the grant rules of SPEC §3 for role ri at loc (they
// apply to revocation alike).
func mayGrant(snap *snapshot.Snapshot, st actorState, ri int, loc string) error {
	role := snap.Reg.Roles[ri]
	if role.Platform || role.Reserved {
		if st.system || st.superAdmin {
			return nil
		}
		return fmt.Errorf("%w: only super admins grant %s", ErrForbidden, role.Name)
	}
	if st.privileged() {
		return nil
	}
	if !mayManage(snap, st.user, loc) {
		return fmt.Errorf("%w: no users:manage covering %q", ErrForbidden, loc)
	}
	if !role.Perms.SubsetOf(ownPerms(snap, st.user, loc)) {
		return fmt.Errorf("%w: %s has permissions the actor lacks at %q", ErrForbidden, role.Name, loc)
	}
	return nil
}

// checkRolePlace validates role and location and returns the role index.
func checkRolePlace(snap *snapshot.Snapshot, role, loc string) (int, error) {
	ri, ok := roleIndex(snap.Reg, role)
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownRole, truncateID(role))
	}
	platform := snap.Reg.Roles[ri].Platform
	switch {
	case loc == policy.PlatformDomain && !platform:
		return 0, fmt.Errorf("%w: %s is granted at locations, not platform-wide", ErrInvalidInput, role)
	case loc != policy.PlatformDomain && platform:
		return 0, fmt.Errorf("%w: %s is granted only platform-wide (\"*\")", ErrInvalidInput, role)
	case loc != policy.PlatformDomain:
		if err := checkLocation(snap, loc); err != nil {
			return 0, err
		}
	}
	return ri, nil
}

// insertGrant writes the grant of role (canonicalised) in tx unless it is
// already held, and reports whether it wrote it (policy.InsertGrant).
func insertGrant(tx *gorm.DB, userID, role, loc string) (bool, error) {
	return policy.InsertGrant(tx, policy.Grant{UserID: userID, Role: canonicalRole(role), Domain: loc})
}
