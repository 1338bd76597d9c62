package affiliation

import (
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/policy"
	"github.com/civicstack/townhall/internal/userwrite"
	"github.com/civicstack/townhall/users"
)

// chunkSize bounds the IDs bound into one IN (...) list.
const chunkSize = 500

// DeleteOrganisation is the cascade of SPEC §3, unguarded
// (access.Admin.DeleteOrganisation is the guarded form). In one
// transaction it soft-deletes the live organisation organisationID,
// soft-deletes all its links (past, live and upcoming), and deactivates
// every user whose link to it was live and who is now left with no live
// link to another organisation and no active profile, except super admins
// and holders of a platform grant (a grouping row at "*"). Users already
// inactive or deleted are left alone. ErrNotFound for an unknown or
// deleted organisation. Audited as organisation_deleted (with the number of
// links ended and of users deactivated) and one user_active event per
// deactivated user.
func (s *Store) DeleteOrganisation(ctx context.Context, organisationID string) error {
	err := s.write(ctx, func(tx *gorm.DB) ([]audit.Event, error) {
		org, ended, deactivated, err := s.deleteOrganisationTx(ctx, tx, organisationID)
		if err != nil {
			return nil, err
		}
		events := make([]audit.Event, 0, 1+len(deactivated))
		events = append(events, audit.Event{
			Type:       audit.TypeOrganisationDeleted,
			LocationID: org.LocationID,
			Details: map[string]any{
				"organisation_id": organisationID,
				"links_ended":     ended,
				"deactivated":     len(deactivated),
			},
		})
		for _, id := range deactivated {
			events = append(events, audit.Event{
				Type:    audit.TypeUserActive,
				UserID:  id,
				Details: map[string]any{"active": false, "organisation_id": organisationID},
			})
		}
		return events, nil
	})
	if err != nil {
		return fmt.Errorf("delete organisation %q: %w", organisationID, err)
	}
	return nil
}

func (s *Store) deleteOrganisationTx(ctx context.Context, tx *gorm.DB, id string) (org *organisationRow, ended int, deactivated []string, err error) {
	if err := checkID("organisation id", id); err != nil {
		return nil, 0, nil, err
	}
	if tx, err = s.inTx(ctx, tx); err != nil {
		return nil, 0, nil, err
	}
	// Locks are taken in the order Link takes them: the organisation, then
	// its links, then users (by ID).
	if org, err = readOrganisation(tx, id, exclusive(tx)); err != nil {
		return nil, 0, nil, err
	}
	var links []Link
	err = tx.Raw("SELECT user_id, valid_from, valid_to FROM "+LinksTable+
		" WHERE organisation_id = ? AND deleted_at IS NULL"+exclusive(tx), id).Scan(&links).Error
	if err != nil {
		return nil, 0, nil, fmt.Errorf("read links: %w", err)
	}
	now := s.nowUTC()
	var linked []string
	for i := range links {
		if links[i].liveAt(now) {
			linked = append(linked, links[i].UserID)
		}
	}
	slices.Sort(linked)
	linked = slices.Compact(linked)

	stamp := map[string]any{"deleted_at": now, "updated_at": now}
	if err := tx.Model(&linkRow{}).Where("organisation_id = ? AND deleted_at IS NULL", id).Updates(stamp).Error; err != nil {
		return nil, 0, nil, fmt.Errorf("delete links: %w", err)
	}
	if err := tx.Model(&organisationRow{}).Where("id = ?", id).Updates(stamp).Error; err != nil {
		return nil, 0, nil, fmt.Errorf("delete organisation: %w", err)
	}
	for chunk := range slices.Chunk(linked, chunkSize) {
		ids, err := deactivateStranded(tx, chunk, now)
		if err != nil {
			return nil, 0, nil, err
		}
		deactivated = append(deactivated, ids...)
	}
	if deactivated == nil {
		deactivated = []string{}
	}
	return org, len(links), deactivated, nil
}

// deactivateStranded deactivates those of the users ids (sorted) that are
// live, active, not super admins, and have no live link (to a live
// organisation), no active profile and no platform grant. It runs after
// the organisation's own links were deleted, so they no longer count.
func deactivateStranded(tx *gorm.DB, ids []string, now time.Time) ([]string, error) {
	var rows []struct {
		ID           string
		IsActive     bool
		IsSuperAdmin bool
	}
	err := tx.Raw("SELECT id, is_active, is_super_admin FROM "+users.UsersTable+
		" WHERE id IN ? AND deleted_at IS NULL ORDER BY id"+exclusive(tx), ids).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	var candidates []string
	for _, r := range rows {
		if r.IsActive && !r.IsSuperAdmin {
			candidates = append(candidates, r.ID)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	keep := map[string]bool{}

	var linked []string
	err = tx.Raw("SELECT l.user_id FROM "+LinksTable+" l WHERE l.user_id IN ? AND l.deleted_at IS NULL AND "+liveWindow+
		" AND l.organisation_id IN (SELECT o.id FROM "+OrganisationsTable+" o WHERE o.deleted_at IS NULL)"+dbx.SharedLock(tx),
		candidates, now, now).Scan(&linked).Error
	if err != nil {
		return nil, fmt.Errorf("read remaining links: %w", err)
	}
	for _, id := range linked {
		keep[id] = true
	}

	var profiled []string
	err = tx.Raw("SELECT user_id FROM "+users.ProfilesTable+
		" WHERE user_id IN ? AND is_active = ? AND deleted_at IS NULL"+dbx.SharedLock(tx), candidates, true).Scan(&profiled).Error
	if err != nil {
		return nil, fmt.Errorf("read profiles: %w", err)
	}
	for _, id := range profiled {
		keep[id] = true
	}

	granted, err := policy.HoldersAt(tx, policy.Holders{Domains: []string{policy.PlatformDomain}, Among: candidates, Shared: true})
	if err != nil {
		return nil, fmt.Errorf("read platform grants: %w", err)
	}
	for _, id := range granted {
		keep[id] = true
	}

	var out []string
	for _, id := range candidates {
		if !keep[id] {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	err = tx.Table(users.UsersTable).Where("id IN ?", out).
		Updates(map[string]any{"is_active": false, "updated_at": now}).Error
	if err != nil {
		return nil, fmt.Errorf("deactivate users: %w", err)
	}
	if err := userwrite.EndSessions(tx, out, users.EndDeactivated, now); err != nil {
		return nil, fmt.Errorf("deactivate users: %w", err)
	}
	return out, nil
}
