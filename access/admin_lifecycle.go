package access

import (
	"context"
	"fmt"
	"slices"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// SetUserActive activates or deactivates a user (super admins and
// platform_admin). Only the flag changes: profiles, grants and links stay
// and work again on reactivation. Deactivating a super admin ends the
// impersonation sessions they run. The last active super admin cannot be
// deactivated (ErrLastSuperAdmin).
func (a *Admin) SetUserActive(ctx context.Context, actor Subject, userID string, active bool) error {
	ch := change{typ: audit.TypeUserActive, userID: userID, details: map[string]any{"value": active}}
	inv, denied, err := a.lifecycleCheck(actor, userID, false)
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	inv.removes = !active
	return a.guardedApply(ctx, actor, ch, inv, func(tx *gorm.DB) error {
		if err := a.users.SetActiveTx(ctx, tx, userID, active); err != nil {
			return err
		}
		if !active {
			return a.endAdminSessionsTx(ctx, tx, actor, userID)
		}
		return nil
	})
}

// SetSuperAdmin sets or clears a user's super admin flag. Only super admins
// (and System()) may; a super admin cannot clear their own flag; the last
// active super admin cannot be unflagged (ErrLastSuperAdmin); technical
// users are never super admins. Clearing the flag ends the impersonation
// sessions the user runs.
func (a *Admin) SetSuperAdmin(ctx context.Context, actor Subject, userID string, on bool) error {
	ch := change{typ: audit.TypeSuperAdmin, userID: userID, details: map[string]any{"value": on}}
	inv := invariant{target: userID, removes: !on}
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
		if err == nil && !st.system {
			inv.superActor = actor.UserID
		}
		return nil
	})
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	return a.guardedApply(ctx, actor, ch, inv, func(tx *gorm.DB) error {
		if err := a.users.SetSuperAdminTx(ctx, tx, userID, on); err != nil {
			return err
		}
		if !on {
			return a.endAdminSessionsTx(ctx, tx, actor, userID)
		}
		// A super admin is never impersonated: sessions of which the new
		// super admin is the target end for good.
		return a.endSessionsWhereTx(ctx, tx, actor, "target_id", userID, "target_super_admin")
	})
}

// lifecycleCheck validates the target of SetUserActive, DeleteUser or
// AnonymizeUser and checks the actor: System, a super admin, or a
// platform_admin acting on a user who is not a super admin and holds no
// platform or reserved role (only super admins could end those). It returns
// the invariant the transaction re-checks.
func (a *Admin) lifecycleCheck(actor Subject, userID string, deleted bool) (inv invariant, denied, err error) {
	inv.target = userID
	err = a.snapshotRead(func(snap *snapshot) error {
		if !dbx.ValidID(userID) {
			return fmt.Errorf("%w: user id %q", ErrInvalidInput, truncateID(userID))
		}
		u, ok := snap.users.get(userID)
		switch {
		case !ok, u.deleted && !deleted:
			return fmt.Errorf("%w: %q", users.ErrNotFound, userID)
		case !u.deleted && deleted:
			return fmt.Errorf("%w: only deleted users are anonymised", ErrInvalidInput)
		}
		st, err := a.resolveActor(snap, actor)
		if err != nil {
			denied = err
			return nil
		}
		denied = snap.mayEndUser(st, u)
		switch {
		case st.system:
		case st.superAdmin && !st.platformAdmin:
			inv.superActor = actor.UserID // the right rests on the flag: re-checked under lock
		case !st.superAdmin:
			inv.targetNotSuper = true // a platform_admin cannot act on a super admin
		}
		return nil
	})
	return inv, denied, err
}

// mayEndUser is the permission rule of SetUserActive, DeleteUser and
// AnonymizeUser.
func (snap *snapshot) mayEndUser(st actorState, target *userState) error {
	if st.system || st.superAdmin {
		return nil
	}
	if !st.platformAdmin {
		return fmt.Errorf("%w: needs a super admin or platform_admin", ErrForbidden)
	}
	if target.deleted {
		return nil // a deleted user holds nothing any more
	}
	if target.superAdmin && !target.technical {
		return fmt.Errorf("%w: only super admins deactivate or delete a super admin", ErrForbidden)
	}
	for _, g := range target.grants {
		if role := snap.reg.roles[g.role]; role.platform || role.reserved {
			return fmt.Errorf("%w: the user holds %s, which only super admins grant or revoke", ErrForbidden, role.name)
		}
	}
	return nil
}

// invariant is what a transaction that may touch a super admin re-checks
// once it holds the lock on every active super admin.
type invariant struct {
	target string
	// removes: the change ends the target's standing as an active super
	// admin, if it has one.
	removes bool
	// superActor, when set, is an actor whose right to make the change
	// rests on being an active super admin.
	superActor string
	// targetNotSuper refuses the change if the target is an active super
	// admin.
	targetNotSuper bool
}

func (inv invariant) check(admins []string) error {
	targetIsSuper := slices.Contains(admins, inv.target)
	switch {
	case inv.superActor != "" && !slices.Contains(admins, inv.superActor):
		return fmt.Errorf("%w: actor %q is no longer an active super admin", ErrForbidden, inv.superActor)
	case inv.targetNotSuper && targetIsSuper:
		return fmt.Errorf("%w: only super admins deactivate or delete a super admin", ErrForbidden)
	case inv.removes && targetIsSuper && len(admins) == 1:
		return fmt.Errorf("%w: %q", ErrLastSuperAdmin, inv.target)
	}
	return nil
}

// guardedApply is apply for changes that may remove an active super admin.
// Its transaction first locks every active super admin row, so concurrent
// guarded changes serialise and each sees the others' committed effect,
// then re-checks inv against the locked set and refuses (audited) when it
// fails: this is what keeps two super admins unflagging each other at once
// from leaving none. Only then does it write.
func (a *Admin) guardedApply(ctx context.Context, actor Subject, ch change, inv invariant, write func(tx *gorm.DB) error) error {
	var refused error
	err := a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		admins, err := lockSuperAdmins(tx)
		if err != nil {
			return err
		}
		if refused = inv.check(admins); refused != nil {
			return refused
		}
		if testHookGuarded != nil {
			testHookGuarded()
		}
		return write(tx)
	}, inv.target)
	if refused != nil {
		return a.refuse(ctx, actor, ch, refused)
	}
	if err != nil {
		return err
	}
	return a.c.refreshSessions(ctx)
}

// testHookGuarded, when tests set it, runs inside every guarded
// transaction right after its invariant check passed, so a test can hold
// two transactions at that point at once.
var testHookGuarded func()

// lockSuperAdmins returns the IDs of the live, active, interactive super
// admins, locking their rows until tx ends. On PostgreSQL and MySQL the
// rows are locked in ID order (so two guarded transactions never deadlock),
// and a transaction that waited re-reads the rows the other one changed:
// PostgreSQL re-evaluates the condition on the latest row version, MySQL's
// locking reads see the latest committed data. On SQLite the statement
// takes the database's write lock first, which serialises every writer.
func lockSuperAdmins(tx *gorm.DB) ([]string, error) {
	q := tx.Table(users.UsersTable)
	if dbx.DialectOf(tx) == dbx.SQLite {
		// Take the write lock before reading, in case the pool does not
		// begin transactions immediately.
		if err := tx.Exec("UPDATE " + users.UsersTable + " SET is_super_admin = is_super_admin WHERE 1 = 0").Error; err != nil {
			return nil, fmt.Errorf("lock super admins: %w", err)
		}
	} else {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var ids []string
	err := q.Where("is_super_admin = ? AND is_active = ? AND kind = ? AND deleted_at IS NULL", true, true, string(users.Interactive)).
		Order("id").Pluck("id", &ids).Error
	if err != nil {
		return nil, fmt.Errorf("lock super admins: %w", err)
	}
	return ids, nil
}

// DeleteUser soft-deletes a user (super admins and platform_admin, under
// the rules of SetUserActive) and, in the same transaction, every profile,
// grant, affiliation link, API key and impersonation session of that user.
// Nothing the user held counts any more; history and audit stay. The last
// active super admin cannot be deleted (ErrLastSuperAdmin).
func (a *Admin) DeleteUser(ctx context.Context, actor Subject, userID string) error {
	ch := change{typ: audit.TypeUserDeleted, userID: userID}
	inv, denied, err := a.lifecycleCheck(actor, userID, false)
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	inv.removes = true
	err = a.guardedApply(ctx, actor, ch, inv, func(tx *gorm.DB) error {
		if err := a.users.DeleteTx(ctx, tx, userID); err != nil {
			return err
		}
		if err := a.profiles.DeleteForUserTx(ctx, tx, userID); err != nil {
			return err
		}
		if err := tx.Where("ptype = ? AND v0 = ?", "g", policy.UserKey(userID)).Delete(&gormadapter.CasbinRule{}).Error; err != nil {
			return fmt.Errorf("delete grants: %w", err)
		}
		if err := a.affiliations.UnlinkAllTx(ctx, tx, userID); err != nil {
			return err
		}
		return endSessionsTx(tx, userID, a.now())
	})
	if err != nil {
		return err
	}
	return a.c.RefreshAffiliations(ctx)
}

// AnonymizeUser clears a deleted user's personal fields: names and email
// are emptied and the username becomes deleted-<id>, freeing the old one
// (super admins and platform_admin). A user that is not deleted gives
// ErrInvalidInput. Audit events hold IDs only, so the audit chain is
// untouched.
func (a *Admin) AnonymizeUser(ctx context.Context, actor Subject, userID string) error {
	ch := change{typ: audit.TypeUserAnonymized, userID: userID}
	_, denied, err := a.lifecycleCheck(actor, userID, true)
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	return a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		return a.users.AnonymizeTx(ctx, tx, userID)
	}, userID)
}

// MoveLocation moves a location and its subtree under newParentID ("" for
// top level), re-checking levels. The actor needs locations:manage covering
// both the location and its new parent (a platform grant for the top
// level). Scopes change at once: grants follow the locations they are at.
func (a *Admin) MoveLocation(ctx context.Context, actor Subject, id, newParentID string) error {
	ch := change{typ: audit.TypeLocationMoved, location: id}
	var denied error
	if err := a.snapshotRead(func(snap *snapshot) error {
		if err := snap.checkLocation(id); err != nil {
			return err
		}
		if newParentID != "" {
			if err := snap.checkLocation(newParentID); err != nil {
				return err
			}
		}
		from, _ := snap.tree.Parent(id)
		ch.details = map[string]any{"from": from, "to": newParentID}
		st, err := a.resolveActor(snap, actor)
		if err == nil {
			err = snap.mayPerform(st, ModuleLocations, "manage", id, newParentID)
		}
		denied = err
		return nil
	}); err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	if err := a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		return a.locations.MoveTx(ctx, tx, id, newParentID)
	}); err != nil {
		return err
	}
	return a.c.ApplyLocation(location.Change{Kind: location.ChangeMoved, Location: location.Location{ID: id, ParentID: newParentID}})
}

// DeleteLocation soft-deletes a location's subtree (locations:manage
// covering it) and, in the same transaction, ends the grants, profiles and
// organisations held in it; users the organisations' cascade deactivates
// get a user_active event each.
func (a *Admin) DeleteLocation(ctx context.Context, actor Subject, id string) error {
	ch := change{typ: audit.TypeLocationDeleted, location: id, details: map[string]any{}}
	var denied error
	if err := a.snapshotRead(func(snap *snapshot) error {
		if err := snap.checkLocation(id); err != nil {
			return err
		}
		st, err := a.resolveActor(snap, actor)
		if err == nil {
			err = snap.mayPerform(st, ModuleLocations, "manage", id)
		}
		denied = err
		return nil
	}); err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	var deleted, affected, deactivated []string
	if err := dbx.Tx(ctx, a.db, func(tx *gorm.DB) error {
		var err error
		if deleted, err = a.locations.DeleteTx(ctx, tx, id); err != nil {
			return err
		}
		ch.details["count"] = len(deleted)
		// Every grant and profile in the subtree ends before any
		// organisation does, so the organisations' cascade sees who is
		// left with no active profile whatever the chunking.
		for chunk := range slices.Chunk(deleted, insertChunk) {
			holders, err := holdersAt(tx, chunk)
			if err != nil {
				return err
			}
			affected = append(affected, holders...)
			if err := tx.Where("ptype = ? AND v2 IN ?", "g", chunk).Delete(&gormadapter.CasbinRule{}).Error; err != nil {
				return fmt.Errorf("end grants: %w", err)
			}
			if err := a.profiles.DeleteAtTx(ctx, tx, chunk); err != nil {
				return err
			}
		}
		for chunk := range slices.Chunk(deleted, insertChunk) {
			gone, err := a.affiliations.DeleteOrganisationsAtTx(ctx, tx, chunk)
			if err != nil {
				return err
			}
			deactivated = append(deactivated, gone...)
		}
		affected = append(affected, deactivated...)
		return a.recordCascade(ctx, tx, actor, ch, deactivated, "location", id)
	}); err != nil {
		return err
	}
	slices.Sort(affected)
	return a.c.applyDeletion(ctx, location.Change{Kind: location.ChangeDeleted, Location: location.Location{ID: id}, Deleted: deleted},
		slices.Compact(affected))
}

// holdersAt returns the users holding a grant or a live profile at one of
// locs, read inside the deleting transaction.
func holdersAt(tx *gorm.DB, locs []string) ([]string, error) {
	var keys, ids []string
	if err := tx.Model(&gormadapter.CasbinRule{}).Where("ptype = ? AND v2 IN ?", "g", locs).
		Distinct().Pluck("v0", &keys).Error; err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	for _, k := range keys {
		if id, ok := policy.UserFromKey(k); ok {
			ids = append(ids, id)
		}
	}
	var holders []string
	if err := tx.Table(users.ProfilesTable).Where("location_id IN ? AND deleted_at IS NULL", locs).
		Distinct().Pluck("user_id", &holders).Error; err != nil {
		return nil, fmt.Errorf("read profiles: %w", err)
	}
	return append(ids, holders...), nil
}

// holdsWithin reports whether u has a profile or grant inside id's subtree.
func (u *userState) holdsWithin(snap *snapshot, id string) bool {
	for _, pr := range u.profiles {
		loc := pr.location
		if snap.tree.IsWithin(loc, id) {
			return true
		}
	}
	for _, g := range u.grants {
		if g.location != policy.PlatformDomain && snap.tree.IsWithin(g.location, id) {
			return true
		}
	}
	return false
}
