package access

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/location"
)

// Check decides whether s may perform req.Action of req.Module, in the order
// of SPEC §2:
//
//  1. invalid or unknown input: a typed error and a denial;
//  2. anonymous: allowed only for public actions of modules enabled there;
//  3. unknown user: users.ErrNotFound; deleted or inactive: denied;
//  4. active interactive super admins (not impersonated): allowed;
//  5. module disabled in the municipality: denied;
//  6. public and authenticated actions: allowed;
//  7. a platform grant ("*") whose role allows the action: allowed;
//  8. grants that count (anchor profile active and approved) whose role
//     allows the action and whose location covers the request: allowed;
//  9. otherwise denied, with the reason of the first failed condition.
//
// Without a Resource, step 8 is a gate: a grant at the municipality, an
// ancestor or a descendant of it counts. With a Resource, its location must
// lie in the grant's subtree and its category in the anchor profile's
// effective categories. Check never touches the database and never waits
// for a writer. Denied decisions are recorded in the audit log
// asynchronously, without allocating.
func (c *Checker) Check(ctx context.Context, s Subject, req Request) (Decision, error) {
	probe := c.obs.beginCheck(ctx, &req)
	var (
		at checked
		d  Decision
	)
	err := c.decideAt(c.snapshot(), &s, &req, &at, &d)
	if err != nil {
		d = deny(ReasonInvalid)
	}
	if !d.Allowed || c.auditAllowed {
		if !at.resolved || !c.recordCode(at.snap, &at.sub, at.ai, at.loc, &d) {
			c.recordDecision(&s, &req, &d)
		}
	}
	c.obs.endCheck(ctx, probe, d, err)
	return d, err
}

// scope is where a request falls, resolved against the tree.
type scope struct {
	muni      string // the municipality, "" when none applies
	muniIx    int32  // its tree index, -1 when none
	record    string // the record's location (or, for affiliated actions, its organisation's), "" when none
	recordIx  int32
	hasRecord bool
}

// checked is what Check resolved of a request, for its audit record: the
// subject, the action and the location the record names (the resource's,
// or else the municipality), once every one is resolved.
type checked struct {
	snap     *snapshot
	sub      subject
	ai       int
	loc      int32
	resolved bool
}

// decide is Check on a snapshot.
func (c *Checker) decide(snap *snapshot, s *Subject, req *Request) (Decision, error) {
	var (
		at checked
		d  Decision
	)
	err := c.decideAt(snap, s, req, &at, &d)
	return d, err
}

// decideAt is decide, filling at and, without an error, d.
func (c *Checker) decideAt(snap *snapshot, s *Subject, req *Request, at *checked, d *Decision) error {
	ai, err := snap.reg.action(req.Module, req.Action)
	if err != nil {
		return err
	}
	act := &snap.reg.actions[ai]
	sc, err := resolveScope(snap, act, req)
	if err != nil {
		return err
	}
	if sc.hasRecord && req.Municipality != "" && !snap.view.IsWithinIndex(sc.recordIx, sc.muniIx) {
		*d = deny(ReasonOutOfScope) // recorded with the request's strings
		return nil
	}
	sub, err := c.resolveSubject(snap, s, "checks")
	if err != nil {
		return err
	}
	at.snap, at.sub, at.ai, at.loc = snap, sub, ai, -1
	switch {
	case req.Resource != nil && req.Resource.LocationID != "":
		at.loc = sc.recordIx
	case req.Municipality != "":
		at.loc = sc.muniIx
	}
	// An impersonation of an inactive user was not resolved: its record
	// names the impersonator as given.
	at.resolved = s.ImpersonatorID == "" || sub.imp != nil
	c.decideFor(snap, &at.sub, ai, act, &sc, req.Resource, d)
	return nil
}

// decideFor is steps 2 and 4-9 of SPEC §2 for a resolved subject and a
// validated request: the one decision path of Check and Decide.
func (c *Checker) decideFor(snap *snapshot, sub *subject, ai int, act *actionInfo, sc *scope, res *Resource, d *Decision) {
	// Whether an allow that does not depend on a grant's location (public,
	// authenticated, platform grant) may cover this request: a record with
	// no location only while the module is enabled everywhere.
	unscoped := res == nil || sc.hasRecord || snap.enabledEverywhereIdx(act.moduleIdx)
	enabled := snap.moduleEnabledAt(act.moduleIdx, sc.muniIx)
	u := sub.u
	switch {
	case u == nil:
		if act.public && enabled && unscoped {
			*d = allow(ReasonPublic, "", "")
			return
		}
		*d = deny(ReasonNoGrant)
		return
	case sub.inactive:
		*d = deny(ReasonUserInactive)
		return
	case sub.superAdmin():
		*d = allow(ReasonSuperAdmin, "", "")
		return
	case !enabled:
		*d = deny(ReasonModuleDisabled)
		return
	}
	if unscoped {
		switch {
		case act.public:
			*d = allow(ReasonPublic, "", "")
			return
		case act.authenticated:
			*d = allow(ReasonAuthenticated, "", "")
			return
		}
		if u.hasPlatform(ai) {
			role, _ := platformRole(snap, u, ai)
			*d = allow(ReasonPlatformRole, role, "*")
			return
		}
	}
	if act.platform && sc.muniIx < 0 && res == nil {
		*d = deny(ReasonNoGrant)
		return
	}
	c.decideGrants(snap, u, ai, act, sc, res, d)
}

// treeIndex returns the snapshot tree's index of location id, named what
// in errors: ErrInvalidInput for a malformed ID, location.ErrNotFound for
// one the tree does not hold.
func treeIndex(snap *snapshot, what, id string) (int32, error) {
	i, ok := snap.view.Index(id)
	switch {
	case ok:
		return i, nil
	case !dbx.ValidID(id):
		return 0, fmt.Errorf("%w: %s %q", ErrInvalidInput, what, id)
	}
	return 0, fmt.Errorf("%w: %s %q", location.ErrNotFound, what, id)
}

// resolveScope validates the request's places.
func resolveScope(snap *snapshot, act *actionInfo, req *Request) (scope, error) {
	sc := scope{muniIx: -1, recordIx: -1}
	if req.Municipality != "" {
		i, err := treeIndex(snap, "municipality", req.Municipality)
		if err != nil {
			return sc, err
		}
		if level := snap.view.LevelIndex(i); level != location.Municipality {
			return sc, fmt.Errorf("%w: %q is a %s, not a municipality", ErrInvalidInput, req.Municipality, level)
		}
		sc.muni, sc.muniIx = req.Municipality, i
	}
	res := req.Resource
	if res == nil {
		if sc.muni == "" && !act.platform {
			return sc, fmt.Errorf("%w: municipality required for module %q", ErrInvalidInput, act.module)
		}
		return sc, nil
	}
	if res.LocationID != "" {
		i, err := treeIndex(snap, "resource location", res.LocationID)
		if err != nil {
			return sc, err
		}
		sc.record, sc.recordIx, sc.hasRecord = res.LocationID, i, true
	}
	if res.OrganisationID != "" && !dbx.ValidID(res.OrganisationID) {
		return sc, fmt.Errorf("%w: resource organisation %q", ErrInvalidInput, res.OrganisationID)
	}
	if len(res.Category) > 64 {
		return sc, fmt.Errorf("%w: resource category too long", ErrInvalidInput)
	}
	// An affiliated record without a location of its own lies where its
	// organisation does.
	if org := snap.orgs[res.OrganisationID]; act.affiliated && !sc.hasRecord && org != nil {
		if i, ok := snap.view.Index(org.location); ok {
			sc.record, sc.recordIx, sc.hasRecord = org.location, i, true
		}
	}
	if sc.muni == "" && sc.hasRecord {
		if m := snap.view.MunicipalityIndex(sc.recordIx); m >= 0 {
			sc.muni, sc.muniIx = snap.view.IDIndex(m), m
		}
	}
	return sc, nil
}

// platformRole returns the first (by name) platform-granted role of u that
// allows action ai.
func platformRole(snap *snapshot, u *userState, ai int) (string, bool) {
	best := -1
	for _, g := range u.grants {
		if g.platform() && snap.reg.roles[g.role].perms.has(ai) && (best < 0 || int(g.role) < best) {
			best = int(g.role)
		}
	}
	if best < 0 {
		return "", false
	}
	return snap.reg.roles[best].name, true
}

// Denial flags in reporting order (SPEC §2 step 9).
const (
	failNotAffiliated = 1 << iota
	failCategory
	failOutOfScope
	failNotApproved
	failInactive
)

var failReasons = [...]Reason{ReasonNotAffiliated, ReasonCategory, ReasonOutOfScope, ReasonProfileNotApproved, ReasonProfileInactive}

// decideGrants is steps 8 and 9: the counted grants of u whose role
// allows action ai.
func (c *Checker) decideGrants(snap *snapshot, u *userState, ai int, act *actionInfo, sc *scope, res *Resource, d *Decision) {
	var (
		fails    int
		best     *grant
		bestDist int
	)
	view, reg := &snap.view, snap.reg
	for i := range u.grants {
		g := &u.grants[i]
		if !g.counts() || !reg.allows(g.role, ai) {
			continue
		}
		f := g.fails()
		var dist int
		switch {
		case res == nil:
			var related bool
			if dist, related = view.Lineage(sc.muniIx, g.loc); !related {
				f |= failOutOfScope
			}
		case act.affiliated:
			// Instead of the location rule: the record's organisation.
			inScope, linked := c.affiliated(snap, u, u.id, res, view.IDIndex(g.loc), act.module)
			if !inScope {
				f |= failOutOfScope
			}
			if !linked {
				f |= failNotAffiliated
			}
			if !g.allowsCategory(snap, u, res.Category) {
				f |= failCategory
			}
			if sc.hasRecord {
				dist = view.DepthIndex(sc.recordIx) - view.DepthIndex(g.loc)
			}
		case !sc.hasRecord:
			f |= failOutOfScope // only unrestricted subjects act on records without a location
		default:
			if !view.IsWithinIndex(sc.recordIx, g.loc) {
				f |= failOutOfScope
			}
			if !g.allowsCategory(snap, u, res.Category) {
				f |= failCategory
			}
			dist = view.DepthIndex(sc.recordIx) - view.DepthIndex(g.loc)
		}
		if f != 0 {
			fails |= f
			continue
		}
		// Equally near grants: by role name (roles are indexed in name
		// order), then location ID.
		if best == nil || dist < bestDist || dist == bestDist &&
			(g.role < best.role || g.role == best.role && view.IDIndex(g.loc) < view.IDIndex(best.loc)) {
			best, bestDist = g, dist
		}
	}
	if best != nil {
		*d = allow(ReasonRole, reg.roles[best.role].name, view.IDIndex(best.loc))
		return
	}
	if fails != 0 {
		*d = deny(failReasons[bits.TrailingZeros(uint(fails))])
		return
	}
	*d = deny(ReasonNoGrant)
}

func allow(r Reason, role, domain string) Decision {
	return Decision{Allowed: true, Reason: r, Role: role, Domain: domain}
}

func deny(r Reason) Decision { return Decision{Reason: r} }

// UserCanAccessModule is the seed's user_can_access_module(user, module,
// action): true when Check would allow the action without a resource in at
// least one municipality, or platform-wide for platform modules.
func (c *Checker) UserCanAccessModule(ctx context.Context, s Subject, module, action string) (bool, error) {
	snap := c.snapshot()
	ai, err := snap.reg.action(module, action)
	if err != nil {
		return false, err
	}
	sub, err := c.resolveSubject(snap, &s, "checks")
	if err != nil {
		return false, err
	}
	return c.canAccessModule(snap, sub, ai), nil
}

// canAccessModule is UserCanAccessModule for a resolved subject.
func (c *Checker) canAccessModule(snap *snapshot, sub subject, ai int) bool {
	act := &snap.reg.actions[ai]
	u := sub.u
	switch {
	case u == nil:
		return act.public && snap.enabledSomewhereIdx(act.moduleIdx)
	case sub.inactive:
		return false
	case sub.superAdmin():
		return true
	}
	platform := u.hasPlatform(ai)
	if act.platform {
		if platform {
			return true
		}
	} else if (act.public || act.authenticated || platform) && snap.enabledSomewhereIdx(act.moduleIdx) {
		return true
	}
	view := &snap.view
	for i := range u.grants {
		g := &u.grants[i]
		if !g.counts() || g.fails() != 0 || !snap.reg.allows(g.role, ai) {
			continue
		}
		if act.platform {
			return true // the request may name any municipality related to the grant
		}
		if !view.LiveIndex(g.loc) {
			continue
		}
		if muni := view.MunicipalityIndex(g.loc); muni >= 0 {
			if snap.moduleEnabledAt(act.moduleIdx, muni) {
				return true
			}
			continue
		}
		if c.someMunicipalityEnabled(snap, act.module, view.IDIndex(g.loc)) {
			return true
		}
	}
	return false
}

// someMunicipalityEnabled reports whether a municipality in the subtree of
// root (the whole tree when root is "") has module enabled.
func (c *Checker) someMunicipalityEnabled(snap *snapshot, module, root string) bool {
	var walk func(ids []string) bool
	walk = func(ids []string) bool {
		for _, id := range ids {
			if level, _ := snap.tree.Level(id); level == location.Municipality {
				if snap.moduleEnabled(module, id) {
					return true
				}
				continue // nothing below a municipality is another municipality
			}
			if walk(snap.tree.Children(id)) {
				return true
			}
		}
		return false
	}
	if root != "" {
		return walk([]string{root})
	}
	return walk(snap.tree.Roots())
}

// recordDecision queues a decision for the audit log with the request's
// strings (for requests the snapshot did not resolve, which recordCode
// cannot name), without allocating or blocking the check.
func (c *Checker) recordDecision(s *Subject, req *Request, d *Decision) {
	loc := req.Municipality
	if req.Resource != nil && req.Resource.LocationID != "" {
		loc = req.Resource.LocationID
	}
	c.audit.RecordDecision(audit.Decision{
		At: c.stamp(), ActorID: truncateID(s.UserID), ImpersonatorID: truncateID(s.ImpersonatorID),
		LocationID: truncateID(loc), Module: truncateID(req.Module), Action: truncateID(req.Action),
		Reason: string(d.Reason), Allowed: d.Allowed,
	})
}

// truncateID keeps invalid, over-long input from failing the audit write of
// the decision that refused it.
func truncateID(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
