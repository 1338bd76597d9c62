package access

import (
	"context"

	"github.com/civicstack/townhall/internal/snapshot"
)

// affiliated is the rule of affiliated actions (SPEC §2 step 8), used
// instead of the location rule: the resource's organisation must have a
// live link to the user (at the checker's clock) and module among its
// services (linked), and lie in the subtree of the grant's location
// (inScope). Both are reported, so that the denial reason follows the
// precedence of step 9 (not affiliated before out of scope). An empty or
// unknown organisation is neither linked nor in scope.
func (c *Checker) affiliated(snap *snapshot.Snapshot, _ *snapshot.UserState, userID string, res *Resource, grantLoc, module string) (inScope, linked bool) {
	org, ok := snap.Orgs[res.OrganisationID]
	if res.OrganisationID == "" || !ok {
		return false, false
	}
	inScope = snap.Tree.IsWithin(org.Location, grantLoc)
	if _, ok := org.Services[module]; !ok {
		return inScope, false
	}
	now := c.now()
	for _, w := range snap.Links[userID][res.OrganisationID] {
		if w.Live(now) {
			return inScope, true
		}
	}
	return inScope, false
}

// RefreshAffiliations reloads organisations and links, and the users
// named (whose affiliation-dependent state changed), in one snapshot.
// Organisations and links are few next to users and grants, so they are
// reloaded as one part.
func (c *Checker) RefreshAffiliations(ctx context.Context, userIDs ...string) error {
	return c.refresh(ctx, snapshot.Parts{Affiliations: true, Users: userIDs})
}
