package location

import (
	"context"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/txwrite/hook"
)

// The tree writes inside a caller's transaction, without audit event or
// change callback, are for access.Admin only (through package txwrite), so
// that no exported method writes the tree without both (SPEC §3).
func init() {
	hook.LocationCreate = (*Store).createTx
	hook.LocationMove = func(s *Store, ctx context.Context, tx *gorm.DB, id, newParentID string) error {
		_, _, _, err := s.move(ctx, tx, id, newParentID)
		return err
	}
	hook.LocationDelete = (*Store).deleteTx
}
