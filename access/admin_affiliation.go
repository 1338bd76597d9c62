package access

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/internal/txwrite"
)

// Link affiliates l.UserID with organisation l.OrganisationID during
// [l.ValidFrom, l.ValidTo) (nil bounds are open; a window in the past is
// accepted as history). The actor needs users:manage covering the
// organisation's location. A malformed ID or window is ErrInvalidInput, an
// unknown organisation affiliation.ErrNotFound, an unknown or deleted user
// users.ErrNotFound, a window overlapping another link of the pair
// affiliation.ErrDuplicate. Audited as link.
func (a *Admin) Link(ctx context.Context, actor Subject, l affiliation.Link) error {
	details := map[string]any{"organisation": l.OrganisationID}
	for key, t := range map[string]*time.Time{"valid_from": l.ValidFrom, "valid_to": l.ValidTo} {
		if t != nil {
			details[key] = t.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)
		}
	}
	ch := change{typ: audit.TypeLink, userID: l.UserID, details: details}
	return a.linkChange(ctx, actor, ch, l.OrganisationID, func(tx *gorm.DB) error {
		return txwrite.Link(ctx, tx, a.affiliations, l)
	})
}

// Unlink ends a user's affiliation with an organisation: the pair's live
// and upcoming links are soft-deleted, past ones stay as history. The
// actor needs users:manage covering the organisation's location. No live
// or upcoming link is affiliation.ErrNotFound. Audited as unlink.
func (a *Admin) Unlink(ctx context.Context, actor Subject, userID, organisationID string) error {
	ch := change{typ: audit.TypeUnlink, userID: userID, details: map[string]any{"organisation": organisationID}}
	return a.linkChange(ctx, actor, ch, organisationID, func(tx *gorm.DB) error {
		return txwrite.Unlink(ctx, tx, a.affiliations, userID, organisationID)
	})
}

// linkChange runs a guarded change of one user's links to one
// organisation.
func (a *Admin) linkChange(ctx context.Context, actor Subject, ch change, orgID string, write func(tx *gorm.DB) error) error {
	g := &guarded{ch: ch, users: []string{ch.userID}, links: true,
		write: func(tx *gorm.DB) ([]string, error) { return nil, write(tx) }}
	err := a.organisationGuard(ctx, actor, orgID, g, true)
	if errors.Is(err, affiliation.ErrInvalidInput) && !errors.Is(err, ErrInvalidInput) {
		err = fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	return err
}

// DeleteOrganisation deletes an organisation (users:manage covering its
// location) and, in the same transaction, ends all its links and
// deactivates every user whose link to it was live and who is left with no
// live link and no active profile, except super admins and users with a
// platform grant (see affiliation.Store.DeleteOrganisation). Audited as
// organisation_deleted, followed by one user_active event (value false,
// cause organisation_deleted) per deactivated user.
func (a *Admin) DeleteOrganisation(ctx context.Context, actor Subject, organisationID string) error {
	g := &guarded{
		ch:    change{typ: audit.TypeOrganisationDeleted, details: map[string]any{"organisation": organisationID}},
		links: true,
	}
	var deactivated []string
	g.write = func(tx *gorm.DB) ([]string, error) {
		var err error
		deactivated, err = txwrite.DeleteOrganisation(ctx, tx, a.affiliations, organisationID)
		return deactivated, err
	}
	g.record = func(tx *gorm.DB) error {
		return a.recordCascade(ctx, tx, actor, g.ch, deactivated, "organisation", organisationID)
	}
	return a.organisationGuard(ctx, actor, organisationID, g, false)
}

// organisationGuard validates the organisation (and, with withUser, the
// change's user) against the snapshot, sets the change's location to the
// organisation's, checks that the actor holds users:manage covering it,
// and runs g.
func (a *Admin) organisationGuard(ctx context.Context, actor Subject, orgID string, g *guarded, withUser bool) error {
	return a.guard(ctx, actor, g, func(snap *snapshot.Snapshot) error {
		if !dbx.ValidID(orgID) {
			return fmt.Errorf("%w: organisation %q", ErrInvalidInput, orgID)
		}
		if withUser {
			if _, err := liveUser(snap, g.ch.userID); err != nil {
				return err
			}
		}
		org, ok := snap.Orgs[orgID]
		if !ok {
			return fmt.Errorf("%w: organisation %q", affiliation.ErrNotFound, orgID)
		}
		g.ch.location = org.Location
		return nil
	}, func(snap *snapshot.Snapshot, st actorState) error {
		if !st.privileged() && !mayManage(snap, st.user, g.ch.location) {
			return fmt.Errorf("%w: no users:manage covering organisation %q", ErrForbidden, orgID)
		}
		return nil
	})
}
