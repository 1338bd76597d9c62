package access

import (
	"context"
	"fmt"
	"slices"

	gormadapter "github.com/casbin/gorm-adapter/v3"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/location"
)

// DeleteUser soft-deletes a user (super admins and platform_admin) and, in
// the same transaction, every profile, grant, affiliation link, API key and
// impersonation session of that user. History and audit stay. The last
// active super admin cannot be deleted.
func (a *Admin) DeleteUser(ctx context.Context, actor Subject, userID string) error {
	ch := change{typ: audit.TypeUserDeleted, userID: userID}
	denied, err := a.lifecycleCheck(actor, userID, false)
	if err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	return a.guardedApply(ctx, actor, ch, userID, true, func(tx *gorm.DB) error {
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
}

// AnonymizeUser clears a deleted user's personal fields: names and email
// are emptied and the username becomes deleted-<id>, freeing the old one.
// Audit events hold IDs only, so the audit chain is untouched.
func (a *Admin) AnonymizeUser(ctx context.Context, actor Subject, userID string) error {
	ch := change{typ: audit.TypeUserAnonymized, userID: userID}
	denied, err := a.lifecycleCheck(actor, userID, true)
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

// mayManageLocations checks locations:manage: System, a super admin or a
// platform grant allowing it.
func (a *Admin) mayManageLocations(snap *snapshot, actor Subject) error {
	st, err := a.resolveActor(snap, actor)
	if err != nil {
		return err
	}
	if st.system || st.superAdmin {
		return nil
	}
	ai, _ := snap.reg.action(ModuleLocations, "manage")
	if _, ok := platformRole(snap, st.user, ai); ok {
		return nil
	}
	return fmt.Errorf("%w: needs locations:manage", ErrForbidden)
}

// MoveLocation moves a location and its subtree under newParentID ("" for
// top level), re-checking levels (locations:manage). Scopes change at once.
func (a *Admin) MoveLocation(ctx context.Context, actor Subject, id, newParentID string) error {
	ch := change{typ: audit.TypeLocationMoved, location: id, details: map[string]any{"parent": newParentID}}
	var denied error
	if err := a.snapshotRead(func(snap *snapshot) error {
		if !dbx.ValidID(id) {
			return fmt.Errorf("%w: location %q", ErrInvalidInput, id)
		}
		if _, ok := snap.tree.Get(id); !ok {
			return fmt.Errorf("%w: %q", location.ErrNotFound, id)
		}
		denied = a.mayManageLocations(snap, actor)
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

// DeleteLocation soft-deletes a location's subtree (locations:manage) and
// ends the grants, profiles and organisations held in it, in one
// transaction.
func (a *Admin) DeleteLocation(ctx context.Context, actor Subject, id string) error {
	ch := change{typ: audit.TypeLocationDeleted, location: id}
	var denied error
	var affected []string
	if err := a.snapshotRead(func(snap *snapshot) error {
		if !dbx.ValidID(id) {
			return fmt.Errorf("%w: location %q", ErrInvalidInput, id)
		}
		if _, ok := snap.tree.Get(id); !ok {
			return fmt.Errorf("%w: %q", location.ErrNotFound, id)
		}
		denied = a.mayManageLocations(snap, actor)
		for uid, u := range snap.users.all() {
			if u.holdsWithin(snap, id) {
				affected = append(affected, uid)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	var deleted []string
	if err := a.apply(ctx, actor, ch, func(tx *gorm.DB) error {
		var err error
		if deleted, err = a.locations.DeleteTx(ctx, tx, id); err != nil {
			return err
		}
		for chunk := range slices.Chunk(deleted, insertChunk) {
			if err := tx.Where("ptype = ? AND v2 IN ?", "g", chunk).Delete(&gormadapter.CasbinRule{}).Error; err != nil {
				return fmt.Errorf("end grants: %w", err)
			}
			if err := a.profiles.DeleteAtTx(ctx, tx, chunk); err != nil {
				return err
			}
			gone, err := a.affiliations.DeleteOrganisationsAtTx(ctx, tx, chunk)
			if err != nil {
				return err
			}
			affected = append(affected, gone...)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := a.c.ApplyLocation(location.Change{Kind: location.ChangeDeleted, Location: location.Location{ID: id}, Deleted: deleted}); err != nil {
		return err
	}
	for _, uid := range affected {
		if err := a.c.RefreshUser(ctx, uid); err != nil {
			return err
		}
	}
	return a.c.RefreshAffiliations(ctx)
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

func boolPtr(b bool) *bool { return &b }
