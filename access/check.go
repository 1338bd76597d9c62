package access

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/snapshot"
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
	snap     *snapshot.Snapshot
	sub      subject
	ai       int
	loc      int32
	resolved bool
}

// decide is Check on a snapshot.
func (c *Checker) decide(snap *snapshot.Snapshot, s *Subject, req *Request) (Decision, error) {
	var (
		at checked
		d  Decision
	)
	err := c.decideAt(snap, s, req, &at, &d)
	return d, err
}

// decideAt is decide, filling at and, without an error, d.
func (c *Checker) decideAt(snap *snapshot.Snapshot, s *Subject, req *Request, at *checked, d *Decision) error {
	ai, err := actionIndex(snap.Reg, req.Module, req.Action)
	if err != nil {
		return err
	}
	act := &snap.Reg.Actions[ai]
	sc, err := resolveScope(snap, act, req)
	if err != nil {
		return err
	}
	if sc.hasRecord && req.Municipality != "" && !snap.View.IsWithinIndex(sc.recordIx, sc.muniIx) {
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
func (c *Checker) decideFor(snap *snapshot.Snapshot, sub *subject, ai int, act *snapshot.ActionInfo, sc *scope, res *Resource, d *Decision) {
	// Whether an allow that does not depend on a grant's location (public,
	// authenticated, platform grant) may cover this request: a record with
	// no location only while the module is enabled everywhere.
	unscoped := res == nil || sc.hasRecord || snap.EnabledEverywhereIdx(act.ModuleIdx)
	enabled := snap.ModuleEnabledAt(act.ModuleIdx, sc.muniIx)
	u := sub.u
	switch {
	case u == nil:
		if act.Public && enabled && unscoped {
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
		case act.Public:
			*d = allow(ReasonPublic, "", "")
			return
		case act.Authenticated:
			*d = allow(ReasonAuthenticated, "", "")
			return
		}
		if u.HasPlatform(ai) {
			role, _ := platformRole(snap, u, ai)
			*d = allow(ReasonPlatformRole, role, "*")
			return
		}
	}
	if act.Platform && sc.muniIx < 0 && res == nil {
		*d = deny(ReasonNoGrant)
		return
	}
	c.decideGrants(snap, u, ai, act, sc, res, d)
}

// treeIndex returns the snapshot tree's index of location id, named what
// in errors: ErrInvalidInput for a malformed ID, location.ErrNotFound for
// one the tree does not hold.
func treeIndex(snap *snapshot.Snapshot, what, id string) (int32, error) {
	i, ok := snap.View.Index(id)
	switch {
	case ok:
		return i, nil
	case !dbx.ValidID(id):
		return 0, fmt.Errorf("%w: %s %q", ErrInvalidInput, what, id)
	}
	return 0, fmt.Errorf("%w: %s %q", location.ErrNotFound, what, id)
}

// resolveScope validates the request's places.
func resolveScope(snap *snapshot.Snapshot, act *snapshot.ActionInfo, req *Request) (scope, error) {
	sc := scope{muniIx: -1, recordIx: -1}
	if req.Municipality != "" {
		i, err := treeIndex(snap, "municipality", req.Municipality)
		if err != nil {
			return sc, err
		}
		if level := snap.View.LevelIndex(i); level != location.Municipality {
			return sc, fmt.Errorf("%w: %q is a %s, not a municipality", ErrInvalidInput, req.Municipality, level)
		}
		sc.muni, sc.muniIx = req.Municipality, i
	}
	res := req.Resource
	if res == nil {
		if sc.muni == "" && !act.Platform {
			return sc, fmt.Errorf("%w: municipality required for module %q", ErrInvalidInput, act.Module)
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
	if org := snap.Orgs[res.OrganisationID]; act.Affiliated && !sc.hasRecord && org != nil {
		if i, ok := snap.View.Index(org.Location); ok {
			sc.record, sc.recordIx, sc.hasRecord = org.Location, i, true
		}
	}
	if sc.muni == "" && sc.hasRecord {
		if m := snap.View.MunicipalityIndex(sc.recordIx); m >= 0 {
			sc.muni, sc.muniIx = snap.View.IDIndex(m), m
		}
	}
	return sc, nil
}

// platformRole returns the first (by name) platform-granted role of u that
// allows action ai.
func platformRole(snap *snapshot.Snapshot, u *snapshot.UserState, ai int) (string, bool) {
	best := -1
	for _, g := range u.Grants {
		if g.Platform() && snap.Reg.Roles[g.Role].Perms.Has(ai) && (best < 0 || int(g.Role) < best) {
			best = int(g.Role)
		}
	}
	if best < 0 {
		return "", false
	}
	return snap.Reg.Roles[best].Name, true
}

var failReasons = [...]Reason{ReasonNotAffiliated, ReasonCategory, ReasonOutOfScope, ReasonProfileNotApproved, ReasonProfileInactive}

// decideGrants is steps 8 and 9: the counted grants of u whose role
// allows action ai.
func (c *Checker) decideGrants(snap *snapshot.Snapshot, u *snapshot.UserState, ai int, act *snapshot.ActionInfo, sc *scope, res *Resource, d *Decision) {
	var (
		fails    int
		best     *snapshot.Grant
		bestDist int
	)
	view, reg := &snap.View, snap.Reg
	for i := range u.Grants {
		g := &u.Grants[i]
		if !g.Counts() || !reg.Allows(g.Role, ai) {
			continue
		}
		f := g.Fails()
		var dist int
		switch {
		case res == nil:
			var related bool
			if dist, related = view.Lineage(sc.muniIx, g.Loc); !related {
				f |= snapshot.FailOutOfScope
			}
		case act.Affiliated:
			// Instead of the location rule: the record's organisation.
			inScope, linked := c.affiliated(snap, u, u.ID, res, view.IDIndex(g.Loc), act.Module)
			if !inScope {
				f |= snapshot.FailOutOfScope
			}
			if !linked {
				f |= snapshot.FailNotAffiliated
			}
			if !g.AllowsCategory(snap, u, res.Category) {
				f |= snapshot.FailCategory
			}
			if sc.hasRecord {
				dist = view.DepthIndex(sc.recordIx) - view.DepthIndex(g.Loc)
			}
		case !sc.hasRecord:
			f |= snapshot.FailOutOfScope // only unrestricted subjects act on records without a location
		default:
			if !view.IsWithinIndex(sc.recordIx, g.Loc) {
				f |= snapshot.FailOutOfScope
			}
			if !g.AllowsCategory(snap, u, res.Category) {
				f |= snapshot.FailCategory
			}
			dist = view.DepthIndex(sc.recordIx) - view.DepthIndex(g.Loc)
		}
		if f != 0 {
			fails |= f
			continue
		}
		// Equally near grants: by role name (roles are indexed in name
		// order), then location ID.
		if best == nil || dist < bestDist || dist == bestDist &&
			(g.Role < best.Role || g.Role == best.Role && view.IDIndex(g.Loc) < view.IDIndex(best.Loc)) {
			best, bestDist = g, dist
		}
	}
	if best != nil {
		*d = allow(ReasonRole, reg.Roles[best.Role].Name, view.IDIndex(best.Loc))
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
	ai, err := actionIndex(snap.Reg, module, action)
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
func (c *Checker) canAccessModule(snap *snapshot.Snapshot, sub subject, ai int) bool {
	act := &snap.Reg.Actions[ai]
	u := sub.u
	switch {
	case u == nil:
		return act.Public && snap.EnabledSomewhereIdx(act.ModuleIdx)
	case sub.inactive:
		return false
	case sub.superAdmin():
		return true
	}
	platform := u.HasPlatform(ai)
	if act.Platform {
		if platform {
			return true
		}
	} else if (act.Public || act.Authenticated || platform) && snap.EnabledSomewhereIdx(act.ModuleIdx) {
		return true
	}
	view := &snap.View
	for i := range u.Grants {
		g := &u.Grants[i]
		if !g.Counts() || g.Fails() != 0 || !snap.Reg.Allows(g.Role, ai) {
			continue
		}
		if act.Platform {
			return true // the request may name any municipality related to the grant
		}
		if !view.LiveIndex(g.Loc) {
			continue
		}
		if muni := view.MunicipalityIndex(g.Loc); muni >= 0 {
			if snap.ModuleEnabledAt(act.ModuleIdx, muni) {
				return true
			}
			continue
		}
		if c.someMunicipalityEnabled(snap, act.Module, view.IDIndex(g.Loc)) {
			return true
		}
	}
	return false
}

// someMunicipalityEnabled reports whether a municipality in the subtree of
// root (the whole tree when root is "") has module enabled.
func (c *Checker) someMunicipalityEnabled(snap *snapshot.Snapshot, module, root string) bool {
	var walk func(ids []string) bool
	walk = func(ids []string) bool {
		for _, id := range ids {
			if level, _ := snap.Tree.Level(id); level == location.Municipality {
				if snap.ModuleEnabled(module, id) {
					return true
				}
				continue // nothing below a municipality is another municipality
			}
			if walk(snap.Tree.Children(id)) {
				return true
			}
		}
		return false
	}
	if root != "" {
		return walk([]string{root})
	}
	return walk(snap.Tree.Roots())
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
