package access

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/location"
)

// Handles: a request names its subject, action and municipality by
// strings; resolving them costs hash lookups that a server can do once per
// request (the subject) or once per route (the action and the place) and
// then decide with Decide, which looks nothing up by string. A handle
// belongs to the Checker that issued it and stays valid across snapshots:
// it names a user, action or location, never a state of it. A zero handle,
// one of another Checker, or one whose user or location no longer exists
// denies (ReasonInvalid).

// checkerIDs numbers Checkers so that a handle is honoured only by its own.
var checkerIDs atomic.Uint32

// Principal is a resolved Subject (see Checker.Resolve). The zero Principal
// denies.
type Principal struct {
	checker uint32
	user    uint32 // dense index + 1; 0 for anonymous
	imp     uint32 // the impersonator's dense index + 1; 0 for none
}

// ActionID is a resolved module action (see Checker.Action). The zero
// ActionID denies.
type ActionID struct {
	checker uint32
	action  uint32 // index + 1
}

// Place is a resolved municipality (see Checker.Place), or none, for
// platform modules. The zero Place denies. A Place names its location
// across snapshots and full reloads; once the location is deleted it
// denies.
type Place struct {
	checker uint32
	loc     int32  // tree index when made; -1 for none
	id      string // the location's ID: a reload may give it another index
}

// index returns at's tree index in snap, and false when its location is
// no longer in snap's tree. A full reload loads the tree in its own order,
// so the index a Place was made with may name another location there: the
// ID tells, and the location is then found by it.
func (at Place) index(snap *snapshot.Snapshot) (int32, bool) {
	if at.loc < 0 || snap.View.IDIndex(at.loc) == at.id {
		return at.loc, true
	}
	return snap.View.Index(at.id)
}

// Resolve resolves s for Decide, with the errors of Check: ErrInvalidInput
// for System(), users.ErrNotFound for an unknown user and ErrInvalidToken
// for an impersonation without a live session. A deleted or inactive user
// resolves (Decide denies it ReasonUserInactive), and so does anonymous.
// Decide re-checks the user's state and the impersonation session at every
// call: a handle never outlives what it stands for.
func (c *Checker) Resolve(ctx context.Context, s Subject) (Principal, error) {
	snap := c.snapshot()
	sub, err := c.resolveSubject(snap, &s, "checks")
	if err != nil {
		return Principal{}, err
	}
	p := Principal{checker: c.id}
	if sub.u != nil {
		p.user = sub.u.Idx + 1
	}
	if s.ImpersonatorID != "" && sub.u != nil {
		// Of an inactive user the session was not looked at: the handle
		// still stands for the impersonation, and denies when the admin is
		// unknown.
		p.imp = ^uint32(0)
		if imp, ok := snap.Users.Get(s.ImpersonatorID); ok {
			p.imp = imp.Idx + 1
		}
	}
	return p, nil
}

// Action resolves module.action for Decide: ErrUnknownModule or
// ErrUnknownAction when the registry does not declare it.
func (c *Checker) Action(module, action string) (ActionID, error) {
	ai, err := actionIndex(c.snapshot().Reg, module, action)
	if err != nil {
		return ActionID{}, err
	}
	return ActionID{checker: c.id, action: uint32(ai) + 1}, nil
}

// Place resolves a municipality for Decide, with the errors of Check's
// Request.Municipality: ErrInvalidInput for a malformed ID or a location of
// another level, location.ErrNotFound for an unknown one. An empty ID is
// "no municipality", for platform modules (Decide denies other modules
// there, as Check refuses them).
func (c *Checker) Place(locationID string) (Place, error) {
	if locationID == "" {
		return Place{checker: c.id, loc: -1}, nil
	}
	snap := c.snapshot()
	i, err := treeIndex(snap, "municipality", locationID)
	if err != nil {
		return Place{}, err
	}
	if level := snap.View.LevelIndex(i); level != location.Municipality {
		return Place{}, fmt.Errorf("%w: %q is a %s, not a municipality", ErrInvalidInput, locationID, level)
	}
	return Place{checker: c.id, loc: i, id: snap.View.IDIndex(i)}, nil
}

// Decide is the gate decision of Check (a request without a resource) on
// handles: steps 2-9 of SPEC §2 on the current snapshot, with no error and
// no allocation. Denied decisions are audited as Check's are. A zero or
// foreign handle, a user or location that no longer exists, or an
// impersonation whose session has ended denies with ReasonInvalid.
func (c *Checker) Decide(p Principal, a ActionID, at Place) (d Decision) {
	snap := c.snapshot()
	var sub subject
	loc, known := at.index(snap)
	if !known {
		at.checker = 0 // denies as invalid
	}
	at.loc = loc
	c.decideHandles(snap, &sub, p, a, at, &d)
	if !d.Allowed || c.auditAllowed {
		ai := int(a.action) - 1
		if a.checker != c.id || uint(ai) >= uint(len(snap.Reg.Actions)) {
			ai = -1
		}
		if at.checker != c.id || !snap.View.LiveIndex(loc) {
			loc = -1
		}
		if !c.recordCode(snap, &sub, ai, loc, &d) {
			c.recordHandles(snap, &sub, ai, loc, &d)
		}
	}
	c.obs.decided(&d)
	return
}

// decideHandles is Decide without the audit; it fills sub with the
// subject it resolved and d with the decision.
func (c *Checker) decideHandles(snap *snapshot.Snapshot, sub *subject, p Principal, a ActionID, at Place, d *Decision) {
	ai := int(a.action) - 1
	if a.checker != c.id || p.checker != c.id || at.checker != c.id || uint(ai) >= uint(len(snap.Reg.Actions)) {
		*d = deny(ReasonInvalid)
		return
	}
	act := &snap.Reg.Actions[ai]
	sc := scope{muniIx: at.loc, recordIx: -1}
	if at.loc >= 0 && !snap.View.LiveIndex(at.loc) || at.loc < 0 && !act.Platform {
		*d = deny(ReasonInvalid)
		return
	}
	if p.user != 0 {
		u := snap.Users.At(p.user - 1)
		if u == nil {
			*d = deny(ReasonInvalid)
			return
		}
		sub.u, sub.inactive = u, u.Deleted || !u.Active
		if !sub.inactive && p.imp != 0 {
			imp := snap.Users.At(p.imp - 1)
			if imp == nil {
				*d = deny(ReasonInvalid)
				return
			}
			if _, err := c.impersonator(snap, imp.ID, u.ID); err != nil {
				*d = deny(ReasonInvalid)
				return
			}
			sub.imp = imp
		}
	}
	c.decideFor(snap, sub, ai, act, &sc, nil, d)
}

// recordHandles queues a decision of Decide for the audit log with its
// strings (recordCode could not), without allocating: every string is one
// the snapshot holds. ai and loc are validated, -1 when none.
func (c *Checker) recordHandles(snap *snapshot.Snapshot, sub *subject, ai int, loc int32, d *Decision) {
	e := audit.Decision{At: c.stamp(), Reason: string(d.Reason), Allowed: d.Allowed}
	if sub.u != nil {
		e.ActorID = sub.u.ID
	}
	if sub.imp != nil {
		e.ImpersonatorID = sub.imp.ID
	}
	if ai >= 0 {
		e.Module, e.Action = snap.Reg.Actions[ai].Module, snap.Reg.Actions[ai].Action
	}
	if loc >= 0 {
		e.LocationID = snap.View.IDIndex(loc)
	}
	c.audit.RecordDecision(e)
}
