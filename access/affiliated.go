package access

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
)

// orgState is an organisation as the snapshot holds it.
type orgState struct {
	location string
	services map[string]struct{}
}

// window is one link's validity [from, to); zero times are open ends.
type window struct{ from, to time.Time }

func (w window) live(now time.Time) bool {
	return (w.from.IsZero() || !now.Before(w.from)) && (w.to.IsZero() || now.Before(w.to))
}

// affiliated reports whether the resource's organisation has a live link to
// u with module among its services, and lies in the subtree of the grant's
// location (SPEC §2 step 8, affiliated actions).
func (c *Checker) affiliated(snap *snapshot, u *userState, userID string, res *Resource, grantLoc, module string) (inScope, linked bool) {
	org, ok := snap.orgs[res.OrganisationID]
	if res.OrganisationID == "" || !ok {
		return true, false
	}
	if !snap.tree.IsWithin(org.location, grantLoc) {
		return false, true
	}
	if _, ok := org.services[module]; !ok {
		return true, false
	}
	now := c.now()
	for _, w := range snap.links[userID][res.OrganisationID] {
		if w.live(now) {
			return true, true
		}
	}
	return true, false
}

// loadAffiliations reads live organisations and non-deleted links.
func loadAffiliations(ctx context.Context, db *gorm.DB) (map[string]*orgState, map[string]map[string][]window, error) {
	orgs, err := affiliation.LoadOrganisations(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	links, err := affiliation.LoadLinks(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	outOrgs := make(map[string]*orgState, len(orgs))
	for _, o := range orgs {
		services := make(map[string]struct{}, len(o.Services))
		for _, s := range o.Services {
			services[s] = struct{}{}
		}
		outOrgs[o.ID] = &orgState{location: o.LocationID, services: services}
	}
	outLinks := map[string]map[string][]window{}
	for _, l := range links {
		byOrg := outLinks[l.UserID]
		if byOrg == nil {
			byOrg = map[string][]window{}
			outLinks[l.UserID] = byOrg
		}
		var w window
		if l.ValidFrom != nil {
			w.from = *l.ValidFrom
		}
		if l.ValidTo != nil {
			w.to = *l.ValidTo
		}
		byOrg[l.OrganisationID] = append(byOrg[l.OrganisationID], w)
	}
	return outOrgs, outLinks, nil
}

// RefreshAffiliations reloads organisations and links. They are few next
// to users and grants, so they are reloaded as one part.
func (c *Checker) RefreshAffiliations(ctx context.Context) error {
	return c.publish(func(next *snapshot) error {
		orgs, links, err := loadAffiliations(ctx, c.db.WithContext(ctx))
		if err != nil {
			return err
		}
		next.orgs, next.links = orgs, links
		return nil
	})
}
