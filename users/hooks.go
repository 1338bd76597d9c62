package users

import (
	"context"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/txwrite/hook"
)

// The writes inside a caller's transaction, without audit event or change
// callback, are for access.Admin only (through package txwrite), so that no
// exported method creates users, profiles or departments, or changes a
// profile's approval or activity, or deletes profiles, without both
// (SPEC §3).
func init() {
	hook.UserCreate = (*Store).createTx
	hook.ProfileCreate = (*ProfileStore).createTx
	hook.DepartmentCreate = (*ProfileStore).createDepartmentTx
	hook.ProfileSetApproved = func(s *ProfileStore, ctx context.Context, tx *gorm.DB, userID, locationID string, approved bool) error {
		return s.setTx(ctx, tx, userID, locationID, map[string]any{"is_approved": approved}, "set profile approved")
	}
	hook.ProfileSetActive = func(s *ProfileStore, ctx context.Context, tx *gorm.DB, userID, locationID string, active bool) error {
		return s.setTx(ctx, tx, userID, locationID, map[string]any{"is_active": active}, "set profile active")
	}
	hook.ProfileDeleteForUser = (*ProfileStore).deleteForUserTx
	hook.ProfileDeleteAt = (*ProfileStore).deleteAtTx
}
