package access

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/internal/userwrite"
	"github.com/civicstack/townhall/users"
)

// SetUserActive activates or deactivates a user (super admins and
// platform_admin). Only the flag changes: profiles, grants and links stay
// and work again on reactivation. Deactivating a super admin ends the
// impersonation sessions they run. The last active super admin cannot be
// deactivated (ErrLastSuperAdmin).
func (a *Admin) SetUserActive(ctx context.Context, actor Subject, userID string, active bool) error {
	g := &guarded{
		ch:    change{typ: audit.TypeUserActive, userID: userID, details: map[string]any{"value": active}},
		users: []string{userID},
		write: func(tx *gorm.DB) ([]string, error) {
			if err := userwrite.SetActive(ctx, tx, a.now(), userID, active); err != nil {
				return nil, err
			}
			if !active {
				return nil, a.endAdminSessionsTx(ctx, tx, actor, userID)
			}
			return nil, nil
		},
	}
	return a.endUser(ctx, actor, g, false, !active)
}

// endUser runs SetUserActive or DeleteUser: the rules of
// lifecycleCheck, then g with the invariant they set (removes: the change
// may end the target's standing as an active super admin).
func (a *Admin) endUser(ctx context.Context, actor Subject, g *guarded, deleted, removes bool) error {
	inv, denied, err := a.lifecycleCheck(actor, g.ch.userID, deleted)
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, g.ch, denied)
	}
	inv.removes = removes
	g.inv = &inv
	return a.commitSessions(ctx, actor, g)
}

// commitSessions commits g and then reloads the impersonation sessions,
// which g's write may have ended.
func (a *Admin) commitSessions(ctx context.Context, actor Subject, g *guarded) error {
	if err := a.commit(ctx, actor, *g); err != nil {
		return err
	}
	return a.c.refreshSessions(ctx)
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
	err := a.snapshotRead(func(snap *snapshot.Snapshot) error {
		target, err := liveUser(snap, userID)
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
		case on && target.Technical:
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
	return a.commitSessions(ctx, actor, &guarded{ch: ch, users: []string{userID}, inv: &inv, write: func(tx *gorm.DB) ([]string, error) {
		if err := userwrite.SetSuperAdmin(ctx, tx, a.now(), userID, on); err != nil {
			return nil, err
		}
		if !on {
			return nil, a.endAdminSessionsTx(ctx, tx, actor, userID)
		}
		// A super admin is never impersonated: sessions of which the new
		// super admin is the target end for good.
		return nil, a.endSessionsWhereTx(ctx, tx, actor, "target_id", userID, "target_super_admin")
	}})
}

// lifecycleCheck validates the target of SetUserActive, DeleteUser or
// AnonymizeUser and checks the actor: System, a super admin, or a
// platform_admin acting on a user who is not a super admin and holds no
// platform or reserved role (only super admins could end those). It returns
// the invariant the transaction re-checks.
func (a *Admin) lifecycleCheck(actor Subject, userID string, deleted bool) (inv invariant, denied, err error) {
	inv.target = userID
	err = a.snapshotRead(func(snap *snapshot.Snapshot) error {
		if !dbx.ValidID(userID) {
			return fmt.Errorf("%w: user id %q", ErrInvalidInput, truncateID(userID))
		}
		u, ok := snap.Users.Get(userID)
		switch {
		case !ok, u.Deleted && !deleted:
			return fmt.Errorf("%w: %q", users.ErrNotFound, userID)
		case !u.Deleted && deleted:
			return fmt.Errorf("%w: only deleted users are anonymised", ErrInvalidInput)
		}
		st, err := a.resolveActor(snap, actor)
		if err != nil {
			denied = err
			return nil
		}
		denied = mayEndUser(snap, st, u)
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
func mayEndUser(snap *snapshot.Snapshot, st actorState, target *snapshot.UserState) error {
	if st.system || st.superAdmin {
		return nil
	}
	if !st.platformAdmin {
		return fmt.Errorf("%w: needs a super admin or platform_admin", ErrForbidden)
	}
	if target.Deleted {
		return nil // a deleted user holds nothing any more
	}
	if target.SuperAdmin && !target.Technical {
		return fmt.Errorf("%w: only super admins deactivate or delete a super admin", ErrForbidden)
	}
	for _, g := range target.Grants {
		if role := snap.Reg.Roles[g.Role]; role.Platform || role.Reserved {
			return fmt.Errorf("%w: the user holds %s, which only super admins grant or revoke", ErrForbidden, role.Name)
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

// testHookGuarded, when tests set it, runs inside every transaction that
// checks the super admin invariant, right after the check passed, so a test can hold
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
	g := &guarded{
		ch:    change{typ: audit.TypeUserDeleted, userID: userID},
		users: []string{userID},
		links: true,
		write: func(tx *gorm.DB) ([]string, error) {
			if err := userwrite.Delete(ctx, tx, a.now(), userID); err != nil {
				return nil, err
			}
			if err := txwrite.DeleteProfilesOf(ctx, tx, a.profiles, userID); err != nil {
				return nil, err
			}
			if err := policy.DeleteUserGrants(tx, userID); err != nil {
				return nil, err
			}
			if err := txwrite.UnlinkAll(ctx, tx, a.affiliations, userID); err != nil {
				return nil, err
			}
			return nil, endSessionsTx(tx, userID, a.now())
		},
	}
	return a.endUser(ctx, actor, g, false, true)
}

// AnonymizeUser clears a deleted user's personal fields: names and email
// are emptied and the username becomes deleted-<id>, freeing the old one
// (super admins and platform_admin). A user that is not deleted gives
// ErrInvalidInput. Audit events hold IDs only, so the audit chain is
// untouched.
func (a *Admin) AnonymizeUser(ctx context.Context, actor Subject, userID string) error {
	g := &guarded{
		ch:    change{typ: audit.TypeUserAnonymized, userID: userID},
		users: []string{userID},
		write: func(tx *gorm.DB) ([]string, error) { return nil, userwrite.Anonymize(ctx, tx, a.now(), userID) },
	}
	_, denied, err := a.lifecycleCheck(actor, userID, true)
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, g.ch, denied)
	}
	return a.commit(ctx, actor, *g)
}
