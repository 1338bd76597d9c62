package users

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// The lifecycle writes (IsActive, IsSuperAdmin, deletion, anonymisation)
// are not part of Store: only access.Admin makes them, through
// internal/userwrite, with its rules, audit event and snapshot update.

// userTx checks the arguments of a method running in the caller's
// transaction tx on user id, and binds tx to ctx.
func userTx(ctx context.Context, tx *gorm.DB, id string) (*gorm.DB, error) {
	if err := validateID(id, "user id"); err != nil {
		return nil, err
	}
	if tx == nil {
		return nil, fmt.Errorf("%w: nil transaction", ErrInvalidInput)
	}
	return tx.WithContext(ctx), nil
}

// owner validates userID for a method that lists what the user holds and
// reports whether the user is live (an unknown or deleted one holds
// nothing), with the store's database bound to ctx.
func (s *Store) owner(ctx context.Context, userID string) (*gorm.DB, bool, error) {
	if err := validateID(userID, "user id"); err != nil {
		return nil, false, err
	}
	db := s.db.WithContext(ctx)
	live, err := liveUser(db, userID)
	return db, live, err
}

// liveUser reports whether user id exists and is not deleted.
func liveUser(db *gorm.DB, id string) (bool, error) {
	var n int64
	if err := db.Model(&userRow{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return false, err
	}
	return n > 0, nil
}

// CountActiveSuperAdmins counts live, active, interactive super admins, read
// through tx (the caller's transaction, or any *gorm.DB; nil means the
// store's database).
func (s *Store) CountActiveSuperAdmins(ctx context.Context, tx *gorm.DB) (int64, error) {
	if tx == nil {
		tx = s.db
	}
	var n int64
	err := tx.WithContext(ctx).Model(&userRow{}).
		Where("is_super_admin = ? AND is_active = ? AND kind = ?", true, true, string(Interactive)).
		Count(&n).Error
	if err != nil {
		return 0, fmt.Errorf("count super admins: %w", err)
	}
	return n, nil
}
