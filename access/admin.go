package access

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// Admin makes guarded changes of access: every method takes the acting
// subject, checks the rules of SPEC §3, writes the change together with its
// audit event in one transaction, and updates the checker's snapshot before
// it returns. A refused change returns an error matching ErrForbidden,
// changes nothing and is audited with Allowed false.
type Admin struct {
	c            *Checker
	db           *gorm.DB
	audit        *audit.Log
	users        *users.Store
	profiles     *users.ProfileStore
	locations    *location.Store
	affiliations *affiliation.Store
	now          func() time.Time
	maxTTL       time.Duration
}

// AdminConfig holds the stores an Admin writes through.
type AdminConfig struct {
	Users        *users.Store
	Profiles     *users.ProfileStore
	Locations    *location.Store
	Affiliations *affiliation.Store
	// MaxImpersonationTTL bounds impersonation sessions (default 8 hours).
	MaxImpersonationTTL time.Duration
}

// NewAdmin returns the Admin of checker c. townhall.Open calls it.
func NewAdmin(c *Checker, cfg AdminConfig) (*Admin, error) {
	if c == nil || cfg.Users == nil || cfg.Profiles == nil || cfg.Locations == nil || cfg.Affiliations == nil {
		return nil, fmt.Errorf("%w: admin needs a checker and every store", ErrInvalidInput)
	}
	if cfg.MaxImpersonationTTL <= 0 {
		cfg.MaxImpersonationTTL = 8 * time.Hour
	}
	return &Admin{
		c: c, db: c.db, audit: c.audit, now: c.now,
		users: cfg.Users, profiles: cfg.Profiles, locations: cfg.Locations, affiliations: cfg.Affiliations,
		maxTTL: cfg.MaxImpersonationTTL,
	}, nil
}

// Membership is a profile with its first grant, as AddMember creates it.
type Membership struct {
	UserID, LocationID, Role, DepartmentID string
	AllowedCategories                      []string
}

// change describes one guarded change for auditing.
type change struct {
	typ, userID, location, role string
	details                     map[string]any
}

func (ch change) event(actor Subject, allowed bool, reason string) audit.Event {
	details := map[string]any{}
	for k, v := range ch.details {
		details[k] = v
	}
	if ch.role != "" {
		details["role"] = ch.role
	}
	if len(details) == 0 {
		details = nil
	}
	return audit.Event{
		Type: ch.typ, ActorID: actorID(actor), ImpersonatorID: actor.ImpersonatorID,
		UserID: ch.userID, LocationID: ch.location, Reason: reason, Allowed: &allowed, Details: details,
	}
}

func actorID(s Subject) string {
	if s.system {
		return SystemActorID
	}
	return s.UserID
}

// SystemActorID is the ActorID audit events carry for System().
const SystemActorID = "system"

// refuse audits a refused change and returns err (which matches
// ErrForbidden).
func (a *Admin) refuse(ctx context.Context, actor Subject, ch change, err error) error {
	if rerr := a.audit.Record(ctx, ch.event(actor, false, refusalReason(err))); rerr != nil {
		return errors.Join(err, fmt.Errorf("audit refusal: %w", rerr))
	}
	return err
}

func refusalReason(err error) string {
	if errors.Is(err, ErrLastSuperAdmin) {
		return "last_super_admin"
	}
	return "forbidden"
}

// apply runs write and the change's audit event in one transaction, then
// refreshes the snapshot for the affected users.
func (a *Admin) apply(ctx context.Context, actor Subject, ch change, write func(tx *gorm.DB) error, refresh ...string) error {
	err := dbx.Tx(ctx, a.db, func(tx *gorm.DB) error {
		if err := write(tx); err != nil {
			return err
		}
		return a.audit.RecordTx(ctx, tx, ch.event(actor, true, ""))
	})
	if err != nil {
		return err
	}
	for _, id := range refresh {
		if err := a.c.RefreshUser(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// actorState is what the permission rules need to know of the actor.
type actorState struct {
	system, superAdmin, platformAdmin bool
	user                              *userState
}

// resolveActor validates the actor: System(), or an active user (an
// impersonated actor acts with the target's rights, never the admin's).
func (a *Admin) resolveActor(snap *snapshot, actor Subject) (actorState, error) {
	if actor.system {
		return actorState{system: true}, nil
	}
	if actor.UserID == "" {
		return actorState{}, fmt.Errorf("%w: anonymous actor", ErrForbidden)
	}
	u, ok := snap.users.get(actor.UserID)
	if !ok || u.deleted || !u.active {
		return actorState{}, fmt.Errorf("%w: actor %q is not an active user", ErrForbidden, actor.UserID)
	}
	if actor.ImpersonatorID != "" {
		if err := a.c.liveImpersonation(snap, actor); err != nil {
			return actorState{}, err
		}
	}
	st := actorState{user: u, superAdmin: u.superAdmin && !u.technical && actor.ImpersonatorID == ""}
	pa, _ := snap.reg.role(RolePlatformAdmin)
	for _, g := range u.grants {
		if g.location == policy.PlatformDomain && g.role == pa {
			st.platformAdmin = true
		}
	}
	return st, nil
}

// privileged reports whether the actor passes every permission rule that is
// not reserved to super admins.
func (st actorState) privileged() bool { return st.system || st.superAdmin || st.platformAdmin }

// counting returns the actor's grants that count at loc (their location
// covers loc, their anchor profile is active and approved) plus platform
// grants, with the anchor profiles of the location grants.
func (snap *snapshot) counting(u *userState, loc string) (grants []grant, anchors []*profileState) {
	for _, g := range u.grants {
		if g.location == policy.PlatformDomain {
			grants, anchors = append(grants, g), append(anchors, nil)
			continue
		}
		if !snap.tree.IsWithin(loc, g.location) {
			continue
		}
		p, _ := snap.anchor(u, g.location)
		if p == nil || !p.active || !p.approved {
			continue
		}
		grants, anchors = append(grants, g), append(anchors, p)
	}
	return grants, anchors
}

// mayManage reports whether a non-privileged actor holds users:manage
// covering loc.
func (snap *snapshot) mayManage(u *userState, loc string) bool {
	ai, err := snap.reg.action(ModuleUsers, "manage")
	if err != nil {
		return false
	}
	grants, _ := snap.counting(u, loc)
	for _, g := range grants {
		if snap.reg.roles[g.role].perms.has(ai) {
			return true
		}
	}
	return false
}

// ownPerms is the union of the permissions of the actor's grants counting
// at loc, as if every module were enabled.
func (snap *snapshot) ownPerms(u *userState, loc string) permSet {
	out := newPermSet(len(snap.reg.actions))
	grants, _ := snap.counting(u, loc)
	for _, g := range grants {
		out.union(snap.reg.roles[g.role].perms)
	}
	return out
}

// mayGrant applies the grant rules of SPEC §3 for role ri at loc.
func (snap *snapshot) mayGrant(st actorState, ri int, loc string) error {
	role := snap.reg.roles[ri]
	if role.platform || role.reserved {
		if st.system || st.superAdmin {
			return nil
		}
		return fmt.Errorf("%w: only super admins grant %s", ErrForbidden, role.name)
	}
	if st.privileged() {
		return nil
	}
	if !snap.mayManage(st.user, loc) {
		return fmt.Errorf("%w: no users:manage covering %q", ErrForbidden, loc)
	}
	if !role.perms.subsetOf(snap.ownPerms(st.user, loc)) {
		return fmt.Errorf("%w: %s has permissions the actor lacks at %q", ErrForbidden, role.name, loc)
	}
	return nil
}

// checkRolePlace validates role and location and returns the role index.
func (snap *snapshot) checkRolePlace(role, loc string) (int, error) {
	ri, ok := snap.reg.role(role)
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownRole, role)
	}
	platform := snap.reg.roles[ri].platform
	switch {
	case loc == policy.PlatformDomain && !platform:
		return 0, fmt.Errorf("%w: %s is granted at locations, not platform-wide", ErrInvalidInput, role)
	case loc != policy.PlatformDomain && platform:
		return 0, fmt.Errorf("%w: %s is granted only platform-wide (\"*\")", ErrInvalidInput, role)
	case loc != policy.PlatformDomain:
		if !dbx.ValidID(loc) {
			return 0, fmt.Errorf("%w: location %q", ErrInvalidInput, loc)
		}
		if _, ok := snap.tree.Get(loc); !ok {
			return 0, fmt.Errorf("%w: %q", location.ErrNotFound, loc)
		}
	}
	return ri, nil
}

// liveUser returns the snapshot state of a live (not deleted) user.
func (snap *snapshot) liveUser(id string) (*userState, error) {
	if !dbx.ValidID(id) {
		return nil, fmt.Errorf("%w: user id %q", ErrInvalidInput, id)
	}
	u, ok := snap.users.get(id)
	if !ok || u.deleted {
		return nil, fmt.Errorf("%w: %q", users.ErrNotFound, id)
	}
	return u, nil
}

// snapshotRead runs fn under the checker's read lock.
func (a *Admin) snapshotRead(fn func(snap *snapshot) error) error {
	return fn(a.c.snapshot())
}

// grantRow is the casbin_rule row of a grant.
func grantRow(userID, role, loc string) gormadapter.CasbinRule {
	return gormadapter.CasbinRule{Ptype: "g", V0: policy.UserKey(userID), V1: policy.RoleKey(canonicalRole(role)), V2: loc}
}

func insertGrant(tx *gorm.DB, userID, role, loc string) error {
	row := grantRow(userID, role, loc)
	var n int64
	if err := tx.Model(&gormadapter.CasbinRule{}).
		Where("ptype = ? AND v0 = ? AND v1 = ? AND v2 = ?", row.Ptype, row.V0, row.V1, row.V2).
		Count(&n).Error; err != nil {
		return fmt.Errorf("read grant: %w", err)
	}
	if n > 0 {
		return nil // already held: granting again changes nothing
	}
	if err := tx.Create(&row).Error; err != nil {
		return fmt.Errorf("write grant: %w", err)
	}
	return nil
}

// AddMember creates the membership's profile and its first grant in one
// transaction. The profile starts unapproved when its place requires
// approval (see SetApprovalRequired). The actor needs what Grant needs for
// the role, and the membership's categories must lie within the actor's own
// effective categories there.
func (a *Admin) AddMember(ctx context.Context, actor Subject, m Membership) (*users.Profile, error) {
	ch := change{typ: audit.TypeMemberAdded, userID: m.UserID, location: m.LocationID, role: m.Role}
	var approval bool
	var denied error
	err := a.snapshotRead(func(snap *snapshot) error {
		if _, err := snap.liveUser(m.UserID); err != nil {
			return err
		}
		ri, err := snap.checkRolePlace(m.Role, m.LocationID)
		if err != nil {
			return err
		}
		if m.LocationID == policy.PlatformDomain {
			return fmt.Errorf("%w: memberships are at locations", ErrInvalidInput)
		}
		st, err := a.resolveActor(snap, actor)
		if err != nil {
			denied = err
			return nil
		}
		if err := snap.mayGrant(st, ri, m.LocationID); err != nil {
			denied = err
			return nil
		}
		if !st.privileged() && !snap.categoriesWithin(st.user, m.LocationID, m.AllowedCategories, m.DepartmentID) {
			denied = fmt.Errorf("%w: categories beyond the actor's own", ErrForbidden)
			return nil
		}
		approval = snap.approvalRequired(m.LocationID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if denied != nil {
		return nil, a.refuse(ctx, actor, ch, denied)
	}
	var out *users.Profile
	err = a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		p, err := a.profiles.CreateTx(ctx, tx, users.Profile{
			UserID: m.UserID, LocationID: m.LocationID, DepartmentID: m.DepartmentID,
			AllowedCategories: m.AllowedCategories, IsApproved: !approval, IsActive: true,
		})
		if err != nil {
			return err
		}
		out = p
		return insertGrant(tx, m.UserID, m.Role, m.LocationID)
	}, m.UserID)
	return out, err
}

// categoriesWithin reports whether the effective categories of a new
// membership lie within the actor's own effective categories at loc.
func (snap *snapshot) categoriesWithin(u *userState, loc string, allowed []string, department string) bool {
	_, anchors := snap.counting(u, loc)
	own := categorySet{}
	for _, p := range anchors {
		if p == nil || snap.unrestrictedCategories(p) {
			return true // a platform grant or an unrestricted anchor sees every category
		}
		for cat := range snap.effective(p) {
			own[cat] = struct{}{}
		}
	}
	target := &profileState{allowed: newCategorySet(allowed), department: department}
	if snap.unrestrictedCategories(target) {
		return false
	}
	for cat := range snap.effective(target) {
		if _, ok := own[cat]; !ok {
			return false
		}
	}
	return true
}

// effective returns the effective categories of a restricted profile.
func (snap *snapshot) effective(p *profileState) categorySet {
	out := categorySet{}
	candidates := p.allowed
	if candidates == nil {
		candidates = snap.departments[p.department]
	}
	for cat := range candidates {
		if snap.allowsCategory(p, cat) {
			out[cat] = struct{}{}
		}
	}
	return out
}

// approvalRequired reports whether a new profile at loc starts unapproved:
// at or below a municipality it follows that municipality's setting; above
// the municipality level it always does.
func (snap *snapshot) approvalRequired(loc string) bool {
	muni, ok := snap.tree.MunicipalityOf(loc)
	if !ok {
		return true
	}
	_, off := snap.approvalOff[muni]
	return !off
}

// Grant gives userID role at locationID ("*" for platform roles). Only super
// admins grant platform and reserved roles; a platform_admin grants any
// other role anywhere; anyone else needs users:manage covering the location
// and may grant only a role whose permissions there are a subset of their
// own. Granting a role already held changes nothing.
func (a *Admin) Grant(ctx context.Context, actor Subject, userID, role, locationID string) error {
	return a.changeGrant(ctx, actor, audit.TypeGrant, userID, role, locationID)
}

// Revoke takes role at locationID away from userID, under the rules of
// Grant. Revoking a role not held changes nothing.
func (a *Admin) Revoke(ctx context.Context, actor Subject, userID, role, locationID string) error {
	return a.changeGrant(ctx, actor, audit.TypeRevoke, userID, role, locationID)
}

func (a *Admin) changeGrant(ctx context.Context, actor Subject, typ, userID, role, loc string) error {
	ch := change{typ: typ, userID: userID, location: loc, role: canonicalRole(role)}
	var denied error
	err := a.snapshotRead(func(snap *snapshot) error {
		if _, err := snap.liveUser(userID); err != nil {
			return err
		}
		ri, err := snap.checkRolePlace(role, loc)
		if err != nil {
			return err
		}
		st, err := a.resolveActor(snap, actor)
		if err == nil {
			err = snap.mayGrant(st, ri, loc)
		}
		denied = err
		return nil
	})
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	return a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		if typ == audit.TypeGrant {
			return insertGrant(tx, userID, role, loc)
		}
		row := grantRow(userID, role, loc)
		return tx.Where("ptype = ? AND v0 = ? AND v1 = ? AND v2 = ?", row.Ptype, row.V0, row.V1, row.V2).
			Delete(&gormadapter.CasbinRule{}).Error
	}, userID)
}

// mayManageProfile checks Approve and SetProfileActive: users:manage
// covering the location and every role the target holds there grantable by
// the actor.
func (snap *snapshot) mayManageProfile(st actorState, target *userState, loc string) error {
	if st.privileged() {
		return nil
	}
	if !snap.mayManage(st.user, loc) {
		return fmt.Errorf("%w: no users:manage covering %q", ErrForbidden, loc)
	}
	own := snap.ownPerms(st.user, loc)
	for _, g := range target.grants {
		if g.location == policy.PlatformDomain {
			continue
		}
		if _, at := snap.anchor(target, g.location); at != loc {
			continue
		}
		role := snap.reg.roles[g.role]
		if role.platform || role.reserved || !role.perms.subsetOf(own) {
			return fmt.Errorf("%w: target holds %s there", ErrForbidden, role.name)
		}
	}
	return nil
}

// Approve approves the user's profile at locationID (idempotent).
func (a *Admin) Approve(ctx context.Context, actor Subject, userID, locationID string) error {
	return a.profileFlag(ctx, actor, audit.TypeApprove, userID, locationID, true, a.profiles.SetApprovedTx)
}

// SetProfileActive activates or deactivates the user's profile at
// locationID (temporary deactivation: grants stay and count again on
// reactivation).
func (a *Admin) SetProfileActive(ctx context.Context, actor Subject, userID, locationID string, active bool) error {
	return a.profileFlag(ctx, actor, audit.TypeProfileActive, userID, locationID, active, a.profiles.SetActiveTx)
}

func (a *Admin) profileFlag(ctx context.Context, actor Subject, typ, userID, loc string, value bool,
	set func(context.Context, *gorm.DB, string, string, bool) error) error {
	ch := change{typ: typ, userID: userID, location: loc, details: map[string]any{"value": value}}
	var denied error
	err := a.snapshotRead(func(snap *snapshot) error {
		target, err := snap.liveUser(userID)
		if err != nil {
			return err
		}
		if !dbx.ValidID(loc) {
			return fmt.Errorf("%w: location %q", ErrInvalidInput, loc)
		}
		if _, ok := target.profile(loc); !ok {
			return fmt.Errorf("%w: no profile of %q at %q", users.ErrNotFound, userID, loc)
		}
		st, err := a.resolveActor(snap, actor)
		if err == nil {
			err = snap.mayManageProfile(st, target, loc)
		}
		denied = err
		return nil
	})
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	return a.apply(ctx, actor, ch, func(tx *gorm.DB) error { return set(ctx, tx, userID, loc, value) }, userID)
}

// SetUserActive activates or deactivates a user (super admins and
// platform_admin). Only the flag changes: profiles, grants and links stay
// and work again on reactivation. The last active super admin cannot be
// deactivated.
func (a *Admin) SetUserActive(ctx context.Context, actor Subject, userID string, active bool) error {
	ch := change{typ: audit.TypeUserActive, userID: userID, details: map[string]any{"value": active}}
	denied, err := a.lifecycleCheck(actor, userID, false)
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	return a.guardedApply(ctx, actor, ch, userID, !active, func(tx *gorm.DB) error {
		return a.users.SetActiveTx(ctx, tx, userID, active)
	})
}

// SetSuperAdmin sets or clears a user's super admin flag. Only super admins
// (and System()) may; a super admin cannot clear their own flag; the last
// active super admin cannot be unflagged; technical users are never super
// admins.
func (a *Admin) SetSuperAdmin(ctx context.Context, actor Subject, userID string, on bool) error {
	ch := change{typ: audit.TypeSuperAdmin, userID: userID, details: map[string]any{"value": on}}
	var denied error
	err := a.snapshotRead(func(snap *snapshot) error {
		target, err := snap.liveUser(userID)
		if err != nil {
			return err
		}
		st, err := a.resolveActor(snap, actor)
		switch {
		case err != nil:
			denied = err
		case !st.system && !st.superAdmin:
			denied = fmt.Errorf("%w: only super admins make or unmake super admins", ErrForbidden)
		case !on && actor.UserID == userID && !st.system:
			denied = fmt.Errorf("%w: a super admin cannot remove their own flag", ErrForbidden)
		case on && target.technical:
			denied = fmt.Errorf("%w: technical users are never super admins", ErrForbidden)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	return a.guardedApply(ctx, actor, ch, userID, !on, func(tx *gorm.DB) error {
		return a.users.SetSuperAdminTx(ctx, tx, userID, on)
	})
}

// lifecycleCheck validates the target and checks that the actor is System,
// a super admin or a platform_admin.
func (a *Admin) lifecycleCheck(actor Subject, userID string, allowDeleted bool) (denied, err error) {
	err = a.snapshotRead(func(snap *snapshot) error {
		if !dbx.ValidID(userID) {
			return fmt.Errorf("%w: user id %q", ErrInvalidInput, userID)
		}
		u, ok := snap.users.get(userID)
		if !ok || (u.deleted && !allowDeleted) {
			return fmt.Errorf("%w: %q", users.ErrNotFound, userID)
		}
		st, err := a.resolveActor(snap, actor)
		if err == nil && !st.privileged() {
			err = fmt.Errorf("%w: needs a super admin or platform_admin", ErrForbidden)
		}
		denied = err
		return nil
	})
	return denied, err
}

// guardedApply is apply for changes that may remove an active super admin:
// inside the transaction it re-counts active super admins under lock and
// refuses (ErrLastSuperAdmin, audited) when none would remain.
func (a *Admin) guardedApply(ctx context.Context, actor Subject, ch change, userID string, removes bool, write func(tx *gorm.DB) error) error {
	err := a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		if err := write(tx); err != nil {
			return err
		}
		if !removes {
			return nil
		}
		n, err := a.users.CountActiveSuperAdmins(ctx, tx)
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrLastSuperAdmin
		}
		return nil
	}, userID)
	if errors.Is(err, ErrLastSuperAdmin) {
		return a.refuse(ctx, actor, ch, err)
	}
	return err
}

// SetModuleEnabled enables or disables a non-platform module in a
// municipality (modules:configure: super admins and platform grants).
func (a *Admin) SetModuleEnabled(ctx context.Context, actor Subject, municipalityID, module string, enabled bool) error {
	ch := change{typ: audit.TypeModuleEnabled, location: municipalityID, details: map[string]any{"module": module, "value": enabled}}
	var denied error
	err := a.snapshotRead(func(snap *snapshot) error {
		if _, ok := snap.reg.actionIx[module]; !ok {
			return fmt.Errorf("%w %q", ErrUnknownModule, module)
		}
		if IsPlatformModule(module) {
			return fmt.Errorf("%w: platform module %q cannot be disabled", ErrInvalidInput, module)
		}
		if err := snap.checkMunicipality(municipalityID); err != nil {
			return err
		}
		denied = a.mayConfigure(snap, actor)
		return nil
	})
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	err = a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		return upsert(tx, &moduleSettingRow{MunicipalityID: municipalityID, Module: module, Enabled: enabled, UpdatedAt: a.now().UTC()})
	})
	if err != nil {
		return err
	}
	return a.c.publish(func(next *snapshot) error {
		next.withModuleEnabled(municipalityID, module, enabled)
		return nil
	})
}

// mayConfigure checks modules:configure: System, a super admin, or a
// platform grant allowing it.
func (a *Admin) mayConfigure(snap *snapshot, actor Subject) error {
	st, err := a.resolveActor(snap, actor)
	if err != nil {
		return err
	}
	if st.system || st.superAdmin {
		return nil
	}
	ai, _ := snap.reg.action(ModuleModules, "configure")
	if _, ok := platformRole(snap, st.user, ai); ok {
		return nil
	}
	return fmt.Errorf("%w: needs modules:configure", ErrForbidden)
}

// SetApprovalRequired sets whether new profiles at or below a municipality
// start unapproved (the default). The actor needs users:manage covering the
// municipality.
func (a *Admin) SetApprovalRequired(ctx context.Context, actor Subject, municipalityID string, required bool) error {
	ch := change{typ: audit.TypeApprovalRequired, location: municipalityID, details: map[string]any{"value": required}}
	var denied error
	err := a.snapshotRead(func(snap *snapshot) error {
		if err := snap.checkMunicipality(municipalityID); err != nil {
			return err
		}
		st, err := a.resolveActor(snap, actor)
		if err == nil && !st.privileged() && !snap.mayManage(st.user, municipalityID) {
			err = fmt.Errorf("%w: no users:manage covering %q", ErrForbidden, municipalityID)
		}
		denied = err
		return nil
	})
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	err = a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		return upsert(tx, &municipalitySettingRow{MunicipalityID: municipalityID, ApprovalRequired: required, UpdatedAt: a.now().UTC()})
	})
	if err != nil {
		return err
	}
	return a.c.publish(func(next *snapshot) error {
		off := maps.Clone(next.approvalOff)
		if required {
			delete(off, municipalityID)
		} else {
			off[municipalityID] = struct{}{}
		}
		next.approvalOff = off
		return nil
	})
}

func (snap *snapshot) checkMunicipality(id string) error {
	if !dbx.ValidID(id) {
		return fmt.Errorf("%w: municipality %q", ErrInvalidInput, id)
	}
	loc, ok := snap.tree.Get(id)
	if !ok {
		return fmt.Errorf("%w: %q", location.ErrNotFound, id)
	}
	if loc.Level != location.Municipality {
		return fmt.Errorf("%w: %q is a %s, not a municipality", ErrInvalidInput, id, loc.Level)
	}
	return nil
}

// upsert writes a settings row keyed by its primary key.
func upsert(tx *gorm.DB, row any) error {
	if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(row).Error; err != nil {
		return fmt.Errorf("write setting: %w", err)
	}
	return nil
}
