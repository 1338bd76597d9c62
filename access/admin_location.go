package access

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/internal/txwrite"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// MoveLocation moves a location and its subtree under newParentID ("" for
// top level), re-checking levels. The actor needs locations:manage covering
// both the location and its new parent (a platform grant for the top
// level). Scopes change at once: grants follow the locations they are at.
func (a *Admin) MoveLocation(ctx context.Context, actor Subject, id, newParentID string) error {
	g := &guarded{
		ch: change{typ: audit.TypeLocationMoved, location: id},
		write: func(tx *gorm.DB) ([]string, error) {
			return nil, txwrite.MoveLocation(ctx, tx, a.locations, id, newParentID)
		},
		tree: func() *location.Change {
			return &location.Change{Kind: location.ChangeMoved, Location: location.Location{ID: id, ParentID: newParentID}}
		},
	}
	return a.guard(ctx, actor, g, func(snap *snapshot.Snapshot) error {
		if err := checkLocation(snap, id); err != nil {
			return err
		}
		if newParentID != "" {
			if err := checkLocation(snap, newParentID); err != nil {
				return err
			}
		}
		from, _ := snap.Tree.Parent(id)
		g.ch.details = map[string]any{"from": from, "to": newParentID}
		return nil
	}, func(snap *snapshot.Snapshot, st actorState) error {
		return mayPerform(snap, st, ModuleLocations, "manage", id, newParentID)
	})
}

// DeleteLocation soft-deletes a location's subtree (locations:manage
// covering it) and, in the same transaction, ends the grants, profiles and
// organisations held in it; users the organisations' cascade deactivates
// get a user_active event each.
func (a *Admin) DeleteLocation(ctx context.Context, actor Subject, id string) error {
	var deleted []string
	g := &guarded{
		ch:    change{typ: audit.TypeLocationDeleted, location: id, details: map[string]any{}},
		links: true,
		tree: func() *location.Change {
			return &location.Change{Kind: location.ChangeDeleted, Location: location.Location{ID: id}, Deleted: deleted}
		},
	}
	var deactivated []string
	g.write = func(tx *gorm.DB) ([]string, error) {
		deactivated = nil // dbx.Tx may run this again
		var err error
		if deleted, err = txwrite.DeleteLocation(ctx, tx, a.locations, id); err != nil {
			return nil, err
		}
		g.ch.details["count"] = len(deleted)
		// Every grant and profile in the subtree ends before any
		// organisation does, so the organisations' cascade sees who is
		// left with no active profile whatever the chunking.
		var affected []string
		for chunk := range slices.Chunk(deleted, insertChunk) {
			holders, err := holdersAt(tx, chunk)
			if err != nil {
				return nil, err
			}
			affected = append(affected, holders...)
			if err := policy.DeleteGrantsAt(tx, chunk); err != nil {
				return nil, err
			}
			if err := txwrite.DeleteProfilesAt(ctx, tx, a.profiles, chunk); err != nil {
				return nil, err
			}
		}
		for chunk := range slices.Chunk(deleted, insertChunk) {
			gone, err := txwrite.DeleteOrganisationsAt(ctx, tx, a.affiliations, chunk)
			if err != nil {
				return nil, err
			}
			deactivated = append(deactivated, gone...)
		}
		return append(affected, deactivated...), nil
	}
	g.record = func(tx *gorm.DB) error {
		return a.recordCascade(ctx, tx, actor, g.ch, deactivated, "location", id)
	}
	return a.guard(ctx, actor, g, func(snap *snapshot.Snapshot) error {
		return checkLocation(snap, id)
	}, func(snap *snapshot.Snapshot, st actorState) error {
		return mayPerform(snap, st, ModuleLocations, "manage", id)
	})
}

// holdersAt returns the users holding a grant or a live profile at one of
// locs, read inside the deleting transaction.
func holdersAt(tx *gorm.DB, locs []string) ([]string, error) {
	ids, err := policy.HoldersAt(tx, policy.Holders{Domains: locs})
	if err != nil {
		return nil, err
	}
	var holders []string
	if err := tx.Table(users.ProfilesTable).Where("location_id IN ? AND deleted_at IS NULL", locs).
		Distinct().Pluck("user_id", &holders).Error; err != nil {
		return nil, fmt.Errorf("read profiles: %w", err)
	}
	return append(ids, holders...), nil
}
