package affiliation

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/txwrite/hook"
)

// The writes inside a caller's transaction, without audit events, are for
// access.Admin only (through package txwrite), so that no exported method
// changes organisations or links, or deactivates users, without an audit
// event and a snapshot update (SPEC §3).
func init() {
	hook.OrganisationCreate = (*Store).createOrganisationTx
	hook.OrganisationDelete = (*Store).deleteOrganisation
	hook.OrganisationsDeleteAt = (*Store).deleteOrganisationsAtTx
	hook.Link = func(s *Store, ctx context.Context, tx *gorm.DB, l Link) error {
		if _, _, err := s.linkTx(ctx, tx, l); err != nil {
			return fmt.Errorf("link user %q to organisation %q: %w", l.UserID, l.OrganisationID, err)
		}
		return nil
	}
	hook.Unlink = func(s *Store, ctx context.Context, tx *gorm.DB, userID, organisationID string) error {
		if _, _, err := s.unlinkTx(ctx, tx, userID, organisationID); err != nil {
			return fmt.Errorf("unlink user %q from organisation %q: %w", userID, organisationID, err)
		}
		return nil
	}
	hook.UnlinkAll = (*Store).unlinkAllTx
}
