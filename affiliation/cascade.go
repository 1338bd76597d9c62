package affiliation

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// Cascades that other deletions run inside their own transaction (package
// access: DeleteUser, DeleteLocation, through package txwrite). Like the
// other in-transaction forms they neither authorise nor audit.

// unlinkAllTx soft-deletes every non-deleted link of userID (the user is
// being deleted).
func (s *Store) unlinkAllTx(ctx context.Context, tx *gorm.DB, userID string) error {
	if err := checkID("user id", userID); err != nil {
		return fmt.Errorf("unlink all: %w", err)
	}
	tx, err := s.inTx(ctx, tx)
	if err != nil {
		return err
	}
	now := s.nowUTC()
	err = tx.Model(&linkRow{}).Where("user_id = ? AND deleted_at IS NULL", userID).
		Updates(map[string]any{"deleted_at": now, "updated_at": now}).Error
	if err != nil {
		return fmt.Errorf("unlink all of user %q: %w", userID, err)
	}
	return nil
}

// deleteOrganisationsAtTx deletes, with DeleteOrganisation's cascade, every
// live organisation located at one of locationIDs (their locations are being
// deleted). It returns the users it deactivated.
func (s *Store) deleteOrganisationsAtTx(ctx context.Context, tx *gorm.DB, locationIDs []string) ([]string, error) {
	if len(locationIDs) == 0 {
		return nil, nil
	}
	tx, err := s.inTx(ctx, tx)
	if err != nil {
		return nil, err
	}
	var ids []string
	if err := tx.Model(&organisationRow{}).Where("location_id IN ? AND deleted_at IS NULL", locationIDs).
		Order("id").Pluck("id", &ids).Error; err != nil {
		return nil, fmt.Errorf("read organisations at deleted locations: %w", err)
	}
	var deactivated []string
	for _, id := range ids {
		d, err := s.deleteOrganisation(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		deactivated = append(deactivated, d...)
	}
	return deactivated, nil
}

// deleteOrganisation is DeleteOrganisation inside the caller's transaction
// tx, without audit events (the caller records them). It returns the IDs
// of the users it deactivated, sorted.
func (s *Store) deleteOrganisation(ctx context.Context, tx *gorm.DB, organisationID string) ([]string, error) {
	_, _, deactivated, err := s.deleteOrganisationTx(ctx, tx, organisationID)
	if err != nil {
		return nil, fmt.Errorf("delete organisation %q: %w", organisationID, err)
	}
	return deactivated, nil
}
