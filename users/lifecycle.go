package users

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// Lifecycle operations. Admin (package access) calls these inside its own
// transaction tx, after its permission checks and invariants, and records the
// audit event itself: they neither authorise nor audit.

// SetActiveTx sets the IsActive flag of live user id. Profiles, grants and
// links are left alone, so they work again on reactivation. ErrNotFound for
// an unknown or deleted user.
func (s *Store) SetActiveTx(ctx context.Context, tx *gorm.DB, id string, active bool) error {
	return s.setFlagTx(ctx, tx, id, "is_active", active, "set user active")
}

// SetSuperAdminTx sets the IsSuperAdmin flag of live user id. Technical users
// are never super admins (ErrInvalidInput with ErrTechnicalUser). The
// last-super-admin rule is Admin's (see CountActiveSuperAdmins).
func (s *Store) SetSuperAdminTx(ctx context.Context, tx *gorm.DB, id string, on bool) error {
	return s.setFlagTx(ctx, tx, id, "is_super_admin", on, "set super admin")
}

func (s *Store) setFlagTx(ctx context.Context, tx *gorm.DB, id, column string, value bool, op string) error {
	tx, err := userTx(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	row, err := lockUser(tx, id)
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	if column == "is_super_admin" && value && Kind(row.Kind) == Technical {
		return fmt.Errorf("%s %q: %w: %w: technical users are never super admins", op, id, ErrInvalidInput, ErrTechnicalUser)
	}
	err = tx.Model(&userRow{}).Where("id = ?", id).Updates(map[string]any{
		column:       value,
		"updated_at": s.opt.nowUTC(),
	}).Error
	if err != nil {
		return fmt.Errorf("%s %q: %w", op, id, err)
	}
	return nil
}

// DeleteTx soft-deletes live user id and revokes its API keys. The row stays:
// the ID is never reused and the username stays taken until AnonymizeTx.
// Profiles, grants, links and sessions are the caller's to end in the same
// transaction (ProfileStore.DeleteForUserTx for profiles). ErrNotFound for
// an unknown or already deleted user.
func (s *Store) DeleteTx(ctx context.Context, tx *gorm.DB, id string) error {
	tx, err := userTx(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	if _, err := lockUser(tx, id); err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	now := s.opt.nowUTC()
	err = tx.Model(&userRow{}).Where("id = ?", id).Updates(map[string]any{
		"deleted_at": now,
		"updated_at": now,
	}).Error
	if err != nil {
		return fmt.Errorf("delete user %q: %w", id, err)
	}
	if err := tx.Model(&apiKeyRow{}).Where("user_id = ?", id).UpdateColumn("revoked_at", now).Error; err != nil {
		return fmt.Errorf("delete user %q: revoke api keys: %w", id, err)
	}
	return nil
}

// AnonymizeTx clears the personal fields of deleted user id: names and email
// are emptied, the username (and its key) becomes "deleted-<id>", and the
// password hash is dropped. The old username is free again. Repeating it is
// harmless. ErrNotFound for an unknown user, ErrInvalidInput for a user that
// is not deleted.
func (s *Store) AnonymizeTx(ctx context.Context, tx *gorm.DB, id string) error {
	tx, err := userTx(ctx, tx, id)
	if err != nil {
		return fmt.Errorf("anonymize user: %w", err)
	}
	var row userRow
	if err := forUpdate(tx.Unscoped()).Where("id = ?", id).Take(&row).Error; err != nil {
		return fmt.Errorf("anonymize user %q: %w", id, notFound(err))
	}
	if !row.DeletedAt.Valid {
		return fmt.Errorf("anonymize user %q: %w: only deleted users are anonymised", id, ErrInvalidInput)
	}
	// The key keeps the ID's case: IDs are case-sensitive, and live keys
	// can never start with the reserved prefix, so it cannot clash.
	name := anonymizedPrefix + id
	err = tx.Unscoped().Model(&userRow{}).Where("id = ?", id).Updates(map[string]any{
		"username":      name,
		"username_key":  name,
		"email":         "",
		"first_name":    "",
		"last_name":     "",
		"password_hash": "",
		"updated_at":    s.opt.nowUTC(),
	}).Error
	if err != nil {
		return fmt.Errorf("anonymize user %q: %w", id, err)
	}
	return nil
}

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
