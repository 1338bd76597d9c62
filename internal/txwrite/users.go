package txwrite

import (
	"context"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/txwrite/hook"
	"github.com/civicstack/townhall/users"
)

// CreateUser is users.Store.Create inside tx, without its audit event and
// change callback.
func CreateUser(ctx context.Context, tx *gorm.DB, s *users.Store, u users.NewUser) (*users.User, error) {
	f, err := fn[func(*users.Store, context.Context, *gorm.DB, users.NewUser) (*users.User, error)]("UserCreate", hook.UserCreate)
	if err != nil {
		return nil, err
	}
	return f(s, ctx, tx, u)
}

// CreateProfile is users.ProfileStore.Create inside tx, without its audit
// event and change callback. The location checks go through the store's
// Locations (users.ProfileStore.WithLocations binds them to tx), not tx.
func CreateProfile(ctx context.Context, tx *gorm.DB, s *users.ProfileStore, p users.Profile) (*users.Profile, error) {
	f, err := fn[func(*users.ProfileStore, context.Context, *gorm.DB, users.Profile) (*users.Profile, error)]("ProfileCreate", hook.ProfileCreate)
	if err != nil {
		return nil, err
	}
	return f(s, ctx, tx, p)
}

// CreateDepartment is users.ProfileStore.CreateDepartment inside tx,
// without its audit event and change callback.
func CreateDepartment(ctx context.Context, tx *gorm.DB, s *users.ProfileStore, d users.Department) (*users.Department, error) {
	f, err := fn[func(*users.ProfileStore, context.Context, *gorm.DB, users.Department) (*users.Department, error)]("DepartmentCreate", hook.DepartmentCreate)
	if err != nil {
		return nil, err
	}
	return f(s, ctx, tx, d)
}

// SetProfileApproved sets IsApproved of the live profile of userID at
// locationID (setting the value it has is not an error); users.ErrNotFound
// when there is none.
func SetProfileApproved(ctx context.Context, tx *gorm.DB, s *users.ProfileStore, userID, locationID string, approved bool) error {
	return setProfileFlag(ctx, tx, s, "ProfileSetApproved", hook.ProfileSetApproved, userID, locationID, approved)
}

// SetProfileActive sets IsActive of the live profile of userID at
// locationID; users.ErrNotFound when there is none.
func SetProfileActive(ctx context.Context, tx *gorm.DB, s *users.ProfileStore, userID, locationID string, active bool) error {
	return setProfileFlag(ctx, tx, s, "ProfileSetActive", hook.ProfileSetActive, userID, locationID, active)
}

func setProfileFlag(ctx context.Context, tx *gorm.DB, s *users.ProfileStore, name string, h any, userID, locationID string, v bool) error {
	f, err := fn[func(*users.ProfileStore, context.Context, *gorm.DB, string, string, bool) error](name, h)
	if err != nil {
		return err
	}
	return f(s, ctx, tx, userID, locationID, v)
}

// DeleteProfilesOf soft-deletes every live profile of userID (the user is
// being deleted). A user with none is not an error.
func DeleteProfilesOf(ctx context.Context, tx *gorm.DB, s *users.ProfileStore, userID string) error {
	f, err := fn[func(*users.ProfileStore, context.Context, *gorm.DB, string) error]("ProfileDeleteForUser", hook.ProfileDeleteForUser)
	if err != nil {
		return err
	}
	return f(s, ctx, tx, userID)
}

// DeleteProfilesAt soft-deletes every live profile at one of locationIDs
// (the locations are being deleted).
func DeleteProfilesAt(ctx context.Context, tx *gorm.DB, s *users.ProfileStore, locationIDs []string) error {
	f, err := fn[func(*users.ProfileStore, context.Context, *gorm.DB, []string) error]("ProfileDeleteAt", hook.ProfileDeleteAt)
	if err != nil {
		return err
	}
	return f(s, ctx, tx, locationIDs)
}
