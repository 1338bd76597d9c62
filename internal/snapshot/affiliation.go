package snapshot

import (
	"context"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/affiliation"
)

// orgState is an organisation as the snapshot holds it.
type orgState struct {
	Location string
	Services map[string]struct{}
}

// Window is one link's validity [from, to); zero times are open ends.
type Window struct{ From, To time.Time }

// Live reports whether the window holds now.
func (w Window) Live(now time.Time) bool {
	return (w.From.IsZero() || !now.Before(w.From)) && (w.To.IsZero() || now.Before(w.To))
}

// loadAffiliations reads live organisations and non-deleted links.
func loadAffiliations(ctx context.Context, db *gorm.DB) (map[string]*orgState, map[string]map[string][]Window, error) {
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
		outOrgs[o.ID] = &orgState{Location: o.LocationID, Services: services}
	}
	outLinks := map[string]map[string][]Window{}
	for _, l := range links {
		byOrg := outLinks[l.UserID]
		if byOrg == nil {
			byOrg = map[string][]Window{}
			outLinks[l.UserID] = byOrg
		}
		var w Window
		if l.ValidFrom != nil {
			w.From = *l.ValidFrom
		}
		if l.ValidTo != nil {
			w.To = *l.ValidTo
		}
		byOrg[l.OrganisationID] = append(byOrg[l.OrganisationID], w)
	}
	return outOrgs, outLinks, nil
}
