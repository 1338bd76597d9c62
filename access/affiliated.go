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

// affiliated is the rule of affiliated actions (SPEC §2 step 8), used
// instead of the location rule: the resource's organisation must have a
// live link to the user (at the checker's clock) and module among its
// services (linked), and lie in the subtree of the grant's location
// (inScope). Both are reported, so that the denial reason follows the
// precedence of step 9 (not affiliated before out of scope). An empty or
// unknown organisation is neither linked nor in scope.
func (c *Checker) affiliated(snap *snapshot, _ *userState, userID string, res *Resource, grantLoc, module string) (inScope, linked bool) {
	org, ok := snap.orgs[res.OrganisationID]
	if res.OrganisationID == "" || !ok {
		return false, false
	}
	inScope = snap.tree.IsWithin(org.location, grantLoc)
	if _, ok := org.services[module]; !ok {
		return inScope, false
	}
	now := c.now()
	for _, w := range snap.links[userID][res.OrganisationID] {
		if w.live(now) {
			return inScope, true
		}
	}
	return inScope, false
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

// RefreshAffiliations reloads organisations and links, and the users
// named (whose affiliation-dependent state changed), in one snapshot.
// Organisations and links are few next to users and grants, so they are
// reloaded as one part.
func (c *Checker) RefreshAffiliations(ctx context.Context, userIDs ...string) error {
	return c.refresh(ctx, parts{affiliations: true, users: userIDs})
}
