package access

import (
	"context"
	"errors"
	"fmt"
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
// changes nothing and is audited with Allowed false. Malformed or unknown
// input returns a typed error (ErrInvalidInput, ErrUnknownRole,
// users.ErrNotFound, location.ErrNotFound, ...) and is not audited: it names
// no change.
//
// The rules, in short:
//   - System() passes every permission rule; the invariants bind it too: the
//     last active super admin cannot be unflagged, deactivated or deleted
//     (ErrLastSuperAdmin), a super admin cannot remove their own flag,
//     technical users are never super admins;
//   - only super admins make or unmake super admins, grant reserved roles
//     and grant platform roles;
//   - a platform_admin grants and revokes any other role anywhere;
//   - anyone else needs users:manage covering the location and may grant or
//     revoke only a role whose permissions are a subset of their own there,
//     counted as if every module were enabled; the categories of a new
//     membership must lie within the actor's own effective categories there;
//   - Approve and SetProfileActive need users:manage covering the location
//     and that the actor could grant every role the target holds there;
//   - SetUserActive, DeleteUser and AnonymizeUser need a super admin or a
//     platform_admin; a platform_admin cannot act on a super admin or on a
//     holder of a platform or reserved role (only super admins could end
//     those).
//
// An impersonated actor acts with the target's rights, never the
// impersonator's.
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

// recordCascade records ch (a deletion that deactivated users) and then one
// user_active event per deactivated user, naming ch's type as the cause
// and the deleted object as key: id. Events come last in a transaction:
// recording locks the audit chain until the commit.
func (a *Admin) recordCascade(ctx context.Context, tx *gorm.DB, actor Subject, ch change, deactivated []string, key, id string) error {
	ch.details["deactivated"] = len(deactivated)
	if err := a.audit.RecordTx(ctx, tx, ch.event(actor, true, "")); err != nil {
		return err
	}
	for _, uid := range deactivated {
		off := change{typ: audit.TypeUserActive, userID: uid, details: map[string]any{
			"value": false, "cause": ch.typ, key: id,
		}}
		if err := a.audit.RecordTx(ctx, tx, off.event(actor, true, "")); err != nil {
			return err
		}
	}
	return nil
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

// Refusal reasons recorded in the audit event of a refused change.
const (
	refusedForbidden      = "forbidden"
	refusedLastSuperAdmin = "last_super_admin"
)

// refuse audits a refused change and returns err. Only refusals (errors
// matching ErrForbidden) are audited; anything else is bad input, which
// names no change, and is returned as it is.
func (a *Admin) refuse(ctx context.Context, actor Subject, ch change, err error) error {
	if !errors.Is(err, ErrForbidden) {
		return err
	}
	reason := refusedForbidden
	if errors.Is(err, ErrLastSuperAdmin) {
		reason = refusedLastSuperAdmin
	}
	ev := ch.event(actor, false, reason)
	var rerr error
	if actor.UserID == "" && !actor.system {
		// Record would fill an empty ActorID with "system"; an anonymous
		// actor stays anonymous, as in anonymous decision events. The
		// asynchronous writer keeps it, and Flush makes it durable before
		// the refusal is returned.
		if !a.audit.RecordAsync(ev) {
			rerr = errors.New("audit buffer full or log closed")
		} else {
			rerr = a.audit.Flush(ctx)
		}
	} else {
		rerr = a.audit.Record(ctx, ev)
	}
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("audit refusal: %w", rerr))
	}
	return err
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
// impersonated actor acts with the target's rights, never the admin's). A
// malformed actor is bad input (ErrInvalidInput); an anonymous, unknown,
// deleted or inactive actor, or an impersonation that is not live, is a
// refusal (ErrForbidden).
func (a *Admin) resolveActor(snap *snapshot, actor Subject) (actorState, error) {
	if actor.system {
		return actorState{system: true}, nil
	}
	if actor.UserID != "" && !dbx.ValidID(actor.UserID) ||
		actor.ImpersonatorID != "" && (actor.UserID == "" || !dbx.ValidID(actor.ImpersonatorID)) {
		return actorState{}, fmt.Errorf("%w: malformed actor %q", ErrInvalidInput, truncateID(actor.UserID))
	}
	if actor.UserID == SystemActorID || actor.ImpersonatorID == SystemActorID {
		// No user has the reserved ID; only System() acts as "system".
		return actorState{}, fmt.Errorf("%w: %q is reserved for System()", ErrInvalidInput, SystemActorID)
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
			return actorState{}, fmt.Errorf("%w: %w", ErrForbidden, err)
		}
	}
	st := actorState{user: u, superAdmin: u.superAdmin && !u.technical && actor.ImpersonatorID == ""}
	if pa, ok := snap.reg.role(RolePlatformAdmin); ok {
		for _, g := range u.grants {
			if g.location == policy.PlatformDomain && g.role == pa {
				st.platformAdmin = true
			}
		}
	}
	return st, nil
}

// privileged reports whether the actor passes every permission rule that is
// not reserved to super admins.
func (st actorState) privileged() bool { return st.system || st.superAdmin || st.platformAdmin }

// counting returns the actor's grants that count at loc (their location
// covers loc, their anchor profile is active and approved) plus platform
// grants, with the anchor profiles of the location grants (nil for
// platform grants).
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

// holds reports whether u holds action ai covering loc: through a platform
// grant, or a counting grant at loc or one of its ancestors. Module
// enablement does not matter. An empty loc (the top of the tree) is
// covered by platform grants only.
func (snap *snapshot) holds(u *userState, ai int, loc string) bool {
	grants, _ := snap.counting(u, loc)
	for _, g := range grants {
		if snap.reg.roles[g.role].perms.has(ai) {
			return true
		}
	}
	return false
}

// mayManage reports whether a non-privileged actor holds users:manage
// covering loc.
func (snap *snapshot) mayManage(u *userState, loc string) bool {
	ai, err := snap.reg.action(ModuleUsers, "manage")
	return err == nil && snap.holds(u, ai, loc)
}

// mayPerform checks that the actor may perform a platform action covering
// every one of locs: System and super admins always may; anyone else needs
// a grant allowing it (a platform grant, or a counting grant covering each
// location).
func (snap *snapshot) mayPerform(st actorState, module, action string, locs ...string) error {
	if st.system || st.superAdmin {
		return nil
	}
	ai, err := snap.reg.action(module, action)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	}
	for _, loc := range locs {
		if !snap.holds(st.user, ai, loc) {
			where := fmt.Sprintf("%q", loc)
			if loc == "" {
				where = "the top level"
			}
			return fmt.Errorf("%w: needs %s:%s covering %s", ErrForbidden, module, action, where)
		}
	}
	return nil
}

// ownPerms is the union of the permissions of the actor's grants counting
// at loc. Permission sets ignore module enablement, so this counts as if
// every module were enabled.
func (snap *snapshot) ownPerms(u *userState, loc string) permSet {
	out := newPermSet(len(snap.reg.actions))
	grants, _ := snap.counting(u, loc)
	for _, g := range grants {
		out.union(snap.reg.roles[g.role].perms)
	}
	return out
}

// mayGrant applies the grant rules of SPEC §3 for role ri at loc (they
// apply to revocation alike).
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
		return 0, fmt.Errorf("%w %q", ErrUnknownRole, truncateID(role))
	}
	platform := snap.reg.roles[ri].platform
	switch {
	case loc == policy.PlatformDomain && !platform:
		return 0, fmt.Errorf("%w: %s is granted at locations, not platform-wide", ErrInvalidInput, role)
	case loc != policy.PlatformDomain && platform:
		return 0, fmt.Errorf("%w: %s is granted only platform-wide (\"*\")", ErrInvalidInput, role)
	case loc != policy.PlatformDomain:
		if err := snap.checkLocation(loc); err != nil {
			return 0, err
		}
	}
	return ri, nil
}

// checkLocation validates a live location ID.
func (snap *snapshot) checkLocation(id string) error {
	if !dbx.ValidID(id) {
		return fmt.Errorf("%w: location %q", ErrInvalidInput, truncateID(id))
	}
	if _, ok := snap.tree.Get(id); !ok {
		return fmt.Errorf("%w: %q", location.ErrNotFound, id)
	}
	return nil
}

// liveUser returns the snapshot state of a live (not deleted) user.
func (snap *snapshot) liveUser(id string) (*userState, error) {
	if !dbx.ValidID(id) {
		return nil, fmt.Errorf("%w: user id %q", ErrInvalidInput, truncateID(id))
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
// the role, and the membership's effective categories must lie within the
// actor's own effective categories there. A user has at most one profile
// per location (users.ErrDuplicate).
func (a *Admin) AddMember(ctx context.Context, actor Subject, m Membership) (*users.Profile, error) {
	m.Role = canonicalRole(m.Role)
	ch := change{typ: audit.TypeMemberAdded, userID: m.UserID, location: m.LocationID, role: m.Role}
	var approval bool
	var denied error
	err := a.snapshotRead(func(snap *snapshot) error {
		target, err := snap.liveUser(m.UserID)
		if err != nil {
			return err
		}
		if m.LocationID == policy.PlatformDomain {
			return fmt.Errorf("%w: memberships are at locations, not platform-wide", ErrInvalidInput)
		}
		ri, err := snap.checkRolePlace(m.Role, m.LocationID)
		if err != nil {
			return err
		}
		if err := snap.checkMembership(target, m); err != nil {
			return err
		}
		st, err := a.resolveActor(snap, actor)
		if err == nil {
			err = snap.mayGrant(st, ri, m.LocationID)
		}
		if err == nil && !st.privileged() && !snap.categoriesWithin(st.user, m.LocationID, m.AllowedCategories, m.DepartmentID) {
			err = fmt.Errorf("%w: categories beyond the actor's own", ErrForbidden)
		}
		denied = err
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
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkMembership validates what AddMember would otherwise learn only from
// the store, so that bad input is never mistaken for a refusal.
func (snap *snapshot) checkMembership(target *userState, m Membership) error {
	for _, c := range m.AllowedCategories {
		if !dbx.ValidID(c) {
			return fmt.Errorf("%w: category %q", ErrInvalidInput, truncateID(c))
		}
	}
	if m.DepartmentID != "" {
		if !dbx.ValidID(m.DepartmentID) {
			return fmt.Errorf("%w: department %q", ErrInvalidInput, truncateID(m.DepartmentID))
		}
		if _, ok := snap.departments[m.DepartmentID]; !ok {
			return fmt.Errorf("%w: department %q", users.ErrNotFound, m.DepartmentID)
		}
	}
	if _, ok := target.profile(m.LocationID); ok {
		return fmt.Errorf("%w: user %q already has a profile at %q", users.ErrDuplicate, m.UserID, m.LocationID)
	}
	return nil
}

// categoriesWithin reports whether the effective categories of a new
// membership lie within the actor's own effective categories at loc (the
// union over the anchor profiles of the actor's grants counting there).
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
// own. Granting a role already held changes nothing (the grant is still
// audited).
func (a *Admin) Grant(ctx context.Context, actor Subject, userID, role, locationID string) error {
	return a.changeGrant(ctx, actor, audit.TypeGrant, userID, role, locationID)
}

// Revoke takes role at locationID away from userID, under the rules of
// Grant. Revoking a role not held changes nothing (the revocation is still
// audited).
func (a *Admin) Revoke(ctx context.Context, actor Subject, userID, role, locationID string) error {
	return a.changeGrant(ctx, actor, audit.TypeRevoke, userID, role, locationID)
}

func (a *Admin) changeGrant(ctx context.Context, actor Subject, typ, userID, role, loc string) error {
	role = canonicalRole(role)
	ch := change{typ: typ, userID: userID, location: loc, role: role}
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
		if err := tx.Where("ptype = ? AND v0 = ? AND v1 = ? AND v2 = ?", row.Ptype, row.V0, row.V1, row.V2).
			Delete(&gormadapter.CasbinRule{}).Error; err != nil {
			return fmt.Errorf("delete grant: %w", err)
		}
		return nil
	}, userID)
}

// mayManageProfile checks Approve and SetProfileActive: users:manage
// covering the location, and every role the target holds there (every
// grant anchored at that profile) one the actor could grant.
func (snap *snapshot) mayManageProfile(st actorState, target *userState, loc string) error {
	if !st.privileged() && !snap.mayManage(st.user, loc) {
		return fmt.Errorf("%w: no users:manage covering %q", ErrForbidden, loc)
	}
	for _, g := range target.grants {
		if g.location == policy.PlatformDomain {
			continue
		}
		if _, at := snap.anchor(target, g.location); at != loc {
			continue
		}
		if err := snap.mayGrant(st, g.role, g.location); err != nil {
			return fmt.Errorf("target holds %s at %q: %w", snap.reg.roles[g.role].name, g.location, err)
		}
	}
	return nil
}

// Approve approves the user's profile at locationID (idempotent). The actor
// needs users:manage covering the location and must be able to grant every
// role the user holds there.
func (a *Admin) Approve(ctx context.Context, actor Subject, userID, locationID string) error {
	return a.profileFlag(ctx, actor, audit.TypeApprove, userID, locationID, true, a.profiles.SetApprovedTx)
}

// SetProfileActive activates or deactivates the user's profile at
// locationID (temporary deactivation: grants stay and count again on
// reactivation), under the rules of Approve.
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
		if err := snap.checkLocation(loc); err != nil {
			return err
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

// SetModuleEnabled enables or disables a non-platform module in a
// municipality. The actor needs modules:configure covering the
// municipality (by default: super admins and platform_admin).
func (a *Admin) SetModuleEnabled(ctx context.Context, actor Subject, municipalityID, module string, enabled bool) error {
	ch := change{typ: audit.TypeModuleEnabled, location: municipalityID, details: map[string]any{"module": module, "value": enabled}}
	var denied error
	err := a.snapshotRead(func(snap *snapshot) error {
		if _, ok := snap.reg.actionIx[module]; !ok {
			return fmt.Errorf("%w %q", ErrUnknownModule, truncateID(module))
		}
		if IsPlatformModule(module) {
			return fmt.Errorf("%w: platform module %q cannot be disabled", ErrInvalidInput, module)
		}
		if err := snap.checkMunicipality(municipalityID); err != nil {
			return err
		}
		st, err := a.resolveActor(snap, actor)
		if err == nil {
			err = snap.mayPerform(st, ModuleModules, "configure", municipalityID)
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
		return upsert(tx, &moduleSettingRow{MunicipalityID: municipalityID, Module: module, Enabled: enabled, UpdatedAt: a.now().UTC()})
	})
	if err != nil {
		return err
	}
	return a.c.syncMunicipality(ctx, municipalityID)
}

// SetApprovalRequired sets whether new profiles at or below a municipality
// start unapproved (the default). The actor needs users:manage covering the
// municipality: whoever may approve its staff may decide that they need no
// approval, which gives nobody more than they could approve anyway.
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
	return a.c.syncMunicipality(ctx, municipalityID)
}

func (snap *snapshot) checkMunicipality(id string) error {
	if !dbx.ValidID(id) {
		return fmt.Errorf("%w: municipality %q", ErrInvalidInput, truncateID(id))
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
