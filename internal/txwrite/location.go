package txwrite

import (
	"context"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/txwrite/hook"
	"github.com/civicstack/townhall/location"
)

// CreateLocation is location.Store.Create inside tx, without its audit
// event and change callback.
func CreateLocation(ctx context.Context, tx *gorm.DB, s *location.Store, l location.Location) (*location.Location, error) {
	f, err := fn[func(*location.Store, context.Context, *gorm.DB, location.Location) (*location.Location, error)]("LocationCreate", hook.LocationCreate)
	if err != nil {
		return nil, err
	}
	return f(s, ctx, tx, l)
}

// MoveLocation is location.Store.Move inside tx, without its audit event
// and change callback.
func MoveLocation(ctx context.Context, tx *gorm.DB, s *location.Store, id, newParentID string) error {
	f, err := fn[func(*location.Store, context.Context, *gorm.DB, string, string) error]("LocationMove", hook.LocationMove)
	if err != nil {
		return err
	}
	return f(s, ctx, tx, id, newParentID)
}

// DeleteLocation is location.Store.Delete inside tx, without its audit
// event and change callback. It returns the IDs of the deleted locations,
// id first, then by depth and ID.
func DeleteLocation(ctx context.Context, tx *gorm.DB, s *location.Store, id string) ([]string, error) {
	f, err := fn[func(*location.Store, context.Context, *gorm.DB, string) ([]string, error)]("LocationDelete", hook.LocationDelete)
	if err != nil {
		return nil, err
	}
	return f(s, ctx, tx, id)
}
