package users

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// deleteAtTx soft-deletes every live profile at one of locationIDs (their
// locations are being deleted), inside the caller's transaction. Like the
// other in-transaction forms it neither authorises nor audits.
func (s *ProfileStore) deleteAtTx(ctx context.Context, tx *gorm.DB, locationIDs []string) error {
	if tx == nil {
		return fmt.Errorf("delete profiles at locations: %w: nil transaction", ErrInvalidInput)
	}
	if len(locationIDs) == 0 {
		return nil
	}
	if err := s.softDelete(tx.WithContext(ctx), "location_id IN ?", locationIDs); err != nil {
		return fmt.Errorf("delete profiles at locations: %w", err)
	}
	return nil
}
