package access

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/snapshot"
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
//     those);
//   - and, over all of them, the result: for an actor who is neither a
//     super admin nor System(), a change is refused unless every permission
//     any user gains from it (a module action at a location, with
//     categories, or for an organisation), counted as if every module were
//     enabled, is one the actor could grant. A platform_admin could grant
//     everything but super admin, platform-wide permissions and actions
//     that list a reserved role; anyone else needs users:manage covering
//     the place and the permission among their own there, within their own
//     categories. This covers dormant grants switched on by a new, approved
//     or re-activated profile, a move or a link, categories gained through
//     Grant onto an existing profile, and any method added later.
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

// actorState is what the permission rules need to know of the actor.
type actorState struct {
	system, superAdmin, platformAdmin bool
	user                              *snapshot.UserState
}

// resolveActor validates the actor: System(), or an active user (an
// impersonated actor acts with the target's rights, never the admin's). A
// malformed actor is bad input (ErrInvalidInput); an anonymous, unknown,
// deleted or inactive actor, or an impersonation that is not live, is a
// refusal (ErrForbidden).
func (a *Admin) resolveActor(snap *snapshot.Snapshot, actor Subject) (actorState, error) {
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
	u, ok := snap.Users.Get(actor.UserID)
	if !ok || u.Deleted || !u.Active {
		return actorState{}, fmt.Errorf("%w: actor %q is not an active user", ErrForbidden, actor.UserID)
	}
	if actor.ImpersonatorID != "" {
		if err := a.c.liveImpersonation(snap, actor); err != nil {
			return actorState{}, fmt.Errorf("%w: %w", ErrForbidden, err)
		}
	}
	st := actorState{user: u, superAdmin: u.SuperAdmin && !u.Technical && actor.ImpersonatorID == ""}
	if pa, ok := roleIndex(snap.Reg, RolePlatformAdmin); ok {
		for _, g := range u.Grants {
			if g.Platform() && int(g.Role) == pa {
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
func counting(snap *snapshot.Snapshot, u *snapshot.UserState, loc string) (grants []snapshot.Grant, anchors []*snapshot.ProfileState) {
	for _, g := range u.Grants {
		if g.Platform() {
			grants, anchors = append(grants, g), append(anchors, nil)
			continue
		}
		if !snap.Tree.IsWithin(loc, snap.GrantAt(u, &g)) {
			continue
		}
		p, _ := snap.AnchorAt(u, g.Loc)
		if p == nil || !p.Active || !p.Approved {
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
func holds(snap *snapshot.Snapshot, u *snapshot.UserState, ai int, loc string) bool {
	grants, _ := counting(snap, u, loc)
	for _, g := range grants {
		if snap.Reg.Roles[g.Role].Perms.Has(ai) {
			return true
		}
	}
	return false
}

// mayManage reports whether a non-privileged actor holds users:manage
// covering loc.
func mayManage(snap *snapshot.Snapshot, u *snapshot.UserState, loc string) bool {
	ai, err := actionIndex(snap.Reg, ModuleUsers, "manage")
	return err == nil && holds(snap, u, ai, loc)
}

// mayPerform checks that the actor may perform a platform action covering
// every one of locs: System and super admins always may; anyone else needs
// a grant allowing it (a platform grant, or a counting grant covering each
// location).
func mayPerform(snap *snapshot.Snapshot, st actorState, module, action string, locs ...string) error {
	if st.system || st.superAdmin {
		return nil
	}
	ai, err := actionIndex(snap.Reg, module, action)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	}
	for _, loc := range locs {
		if !holds(snap, st.user, ai, loc) {
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
func ownPerms(snap *snapshot.Snapshot, u *snapshot.UserState, loc string) snapshot.PermSet {
	out := snapshot.NewPermSet(len(snap.Reg.Actions))
	grants, _ := counting(snap, u, loc)
	for _, g := range grants {
		out.Union(snap.Reg.Roles[g.Role].Perms)
	}
	return out
}

// checkLocation validates a live location ID.
func checkLocation(snap *snapshot.Snapshot, id string) error {
	if !dbx.ValidID(id) {
		return fmt.Errorf("%w: location %q", ErrInvalidInput, truncateID(id))
	}
	if _, ok := snap.Tree.Get(id); !ok {
		return fmt.Errorf("%w: %q", location.ErrNotFound, id)
	}
	return nil
}

// liveUser returns the snapshot state of a live (not deleted) user.
func liveUser(snap *snapshot.Snapshot, id string) (*snapshot.UserState, error) {
	if !dbx.ValidID(id) {
		return nil, fmt.Errorf("%w: user id %q", ErrInvalidInput, truncateID(id))
	}
	u, ok := snap.Users.Get(id)
	if !ok || u.Deleted {
		return nil, fmt.Errorf("%w: %q", users.ErrNotFound, id)
	}
	return u, nil
}

// snapshotRead runs fn under the checker's read lock.
func (a *Admin) snapshotRead(fn func(snap *snapshot.Snapshot) error) error {
	return fn(a.c.snapshot())
}
