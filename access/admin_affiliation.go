package access

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
)

// mayManageOrganisation checks users:manage covering the organisation's
// location.
func (a *Admin) mayManageOrganisation(snap *snapshot, actor Subject, orgID string) (error, error) {
	if !dbx.ValidID(orgID) {
		return nil, fmt.Errorf("%w: organisation %q", ErrInvalidInput, orgID)
	}
	org, ok := snap.orgs[orgID]
	if !ok {
		return nil, fmt.Errorf("%w: organisation %q", affiliation.ErrNotFound, orgID)
	}
	st, err := a.resolveActor(snap, actor)
	if err != nil {
		return err, nil
	}
	if !st.privileged() && !snap.mayManage(st.user, org.location) {
		return fmt.Errorf("%w: no users:manage covering organisation %q", ErrForbidden, orgID), nil
	}
	return nil, nil
}

// Link links a user to an organisation (users:manage covering the
// organisation).
func (a *Admin) Link(ctx context.Context, actor Subject, l affiliation.Link) error {
	ch := change{typ: audit.TypeLink, userID: l.UserID, details: map[string]any{"organisation": l.OrganisationID}}
	return a.orgChange(ctx, actor, ch, l.OrganisationID, func(tx *gorm.DB) error {
		return a.affiliations.LinkTx(ctx, tx, l)
	})
}

// Unlink ends a user's link to an organisation (users:manage covering the
// organisation). The link is soft-deleted: history stays.
func (a *Admin) Unlink(ctx context.Context, actor Subject, userID, organisationID string) error {
	ch := change{typ: audit.TypeUnlink, userID: userID, details: map[string]any{"organisation": organisationID}}
	return a.orgChange(ctx, actor, ch, organisationID, func(tx *gorm.DB) error {
		return a.affiliations.UnlinkTx(ctx, tx, userID, organisationID)
	})
}

// DeleteOrganisation deletes an organisation (users:manage covering it),
// ends all its links and deactivates every user left with no live link and
// no active profile, except super admins and platform grant holders.
func (a *Admin) DeleteOrganisation(ctx context.Context, actor Subject, organisationID string) error {
	ch := change{typ: audit.TypeOrganisationDeleted, details: map[string]any{"organisation": organisationID}}
	var deactivated []string
	err := a.orgChange(ctx, actor, ch, organisationID, func(tx *gorm.DB) error {
		var err error
		deactivated, err = a.affiliations.DeleteOrganisationTx(ctx, tx, organisationID)
		for _, uid := range deactivated {
			if err == nil {
				f := false
				err = a.audit.RecordTx(ctx, tx, audit.Event{
					Type: audit.TypeUserActive, ActorID: actorID(actor), ImpersonatorID: actor.ImpersonatorID,
					UserID: uid, Allowed: boolPtr(true), Details: map[string]any{"value": f, "cause": "organisation_deleted"},
				})
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, uid := range deactivated {
		if err := a.c.RefreshUser(ctx, uid); err != nil {
			return err
		}
	}
	return nil
}

func (a *Admin) orgChange(ctx context.Context, actor Subject, ch change, orgID string, write func(tx *gorm.DB) error) error {
	var denied error
	if err := a.snapshotRead(func(snap *snapshot) error {
		var err error
		denied, err = a.mayManageOrganisation(snap, actor, orgID)
		return err
	}); err != nil {
		return err
	}
	if denied != nil {
		return a.refuse(ctx, actor, ch, denied)
	}
	if err := a.apply(ctx, actor, ch, write); err != nil {
		return err
	}
	return a.c.RefreshAffiliations(ctx)
}
