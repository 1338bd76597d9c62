package txwrite

import (
	"context"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/internal/txwrite/hook"
)

// CreateOrganisation is affiliation.Store.CreateOrganisation inside tx,
// without its audit event.
func CreateOrganisation(ctx context.Context, tx *gorm.DB, s *affiliation.Store, o affiliation.Organisation) (*affiliation.Organisation, error) {
	f, err := fn[func(*affiliation.Store, context.Context, *gorm.DB, affiliation.Organisation) (*affiliation.Organisation, error)]("OrganisationCreate", hook.OrganisationCreate)
	if err != nil {
		return nil, err
	}
	return f(s, ctx, tx, o)
}

// DeleteOrganisation is affiliation.Store.DeleteOrganisation (with its
// cascade) inside tx, without its audit events. It returns the IDs of the
// users it deactivated, sorted.
func DeleteOrganisation(ctx context.Context, tx *gorm.DB, s *affiliation.Store, organisationID string) ([]string, error) {
	f, err := fn[func(*affiliation.Store, context.Context, *gorm.DB, string) ([]string, error)]("OrganisationDelete", hook.OrganisationDelete)
	if err != nil {
		return nil, err
	}
	return f(s, ctx, tx, organisationID)
}

// DeleteOrganisationsAt deletes, with DeleteOrganisation's cascade, every
// live organisation at one of locationIDs (the locations are being
// deleted), and returns the users it deactivated.
func DeleteOrganisationsAt(ctx context.Context, tx *gorm.DB, s *affiliation.Store, locationIDs []string) ([]string, error) {
	f, err := fn[func(*affiliation.Store, context.Context, *gorm.DB, []string) ([]string, error)]("OrganisationsDeleteAt", hook.OrganisationsDeleteAt)
	if err != nil {
		return nil, err
	}
	return f(s, ctx, tx, locationIDs)
}

// Link is affiliation.Store.Link inside tx, without its audit event.
func Link(ctx context.Context, tx *gorm.DB, s *affiliation.Store, l affiliation.Link) error {
	f, err := fn[func(*affiliation.Store, context.Context, *gorm.DB, affiliation.Link) error]("Link", hook.Link)
	if err != nil {
		return err
	}
	return f(s, ctx, tx, l)
}

// Unlink is affiliation.Store.Unlink inside tx, without its audit event.
func Unlink(ctx context.Context, tx *gorm.DB, s *affiliation.Store, userID, organisationID string) error {
	f, err := fn[func(*affiliation.Store, context.Context, *gorm.DB, string, string) error]("Unlink", hook.Unlink)
	if err != nil {
		return err
	}
	return f(s, ctx, tx, userID, organisationID)
}

// UnlinkAll soft-deletes every non-deleted link of userID (the user is
// being deleted).
func UnlinkAll(ctx context.Context, tx *gorm.DB, s *affiliation.Store, userID string) error {
	f, err := fn[func(*affiliation.Store, context.Context, *gorm.DB, string) error]("UnlinkAll", hook.UnlinkAll)
	if err != nil {
		return err
	}
	return f(s, ctx, tx, userID)
}
