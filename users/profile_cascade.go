package users

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// DeleteAtTx soft-deletes every live profile at one of locationIDs (their
// locations are being deleted), inside the caller's transaction. Like the
// other Tx forms it neither authorises nor audits.
func (s *ProfileStore) DeleteAtTx(ctx context.Context, tx *gorm.DB, locationIDs []string) error {
	if tx == nil {
		return fmt.Errorf("delete profiles at locations: %w: nil transaction", ErrInvalidInput)
	}
	if len(locationIDs) == 0 {
		return nil
	}
	now := s.opt.nowUTC()
	err := tx.WithContext(ctx).Model(&profileRow{}).Where("location_id IN ?", locationIDs).Updates(map[string]any{
		"live_key":   gorm.Expr("id"),
		"deleted_at": now,
		"updated_at": now,
	}).Error
	if err != nil {
		return fmt.Errorf("delete profiles at locations: %w", err)
	}
	return nil
}
