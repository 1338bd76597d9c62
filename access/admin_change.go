package access

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbx"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/location"
)

// change describes one guarded change for auditing.
type change struct {
	typ, userID, location, role string
	details                     map[string]any
}

func (ch change) event(actor Subject, allowed bool, reason string) audit.Event {
	details := map[string]any{}
	for k, v := range ch.details {
		details[k] = v
	}
	if ch.role != "" {
		details["role"] = ch.role
	}
	if len(details) == 0 {
		details = nil
	}
	return audit.Event{
		Type: ch.typ, ActorID: actorID(actor), ImpersonatorID: actor.ImpersonatorID,
		UserID: ch.userID, LocationID: ch.location, Reason: reason, Allowed: &allowed, Details: details,
	}
}

// guarded is one Admin change as commit runs it: what it writes, and what
// the write touches, from which commit derives the users whose access may
// change.
type guarded struct {
	ch change
	// users are the users whose rows (user, profiles, grants, links) the
	// write changes.
	users []string
	// write makes the change in tx. It returns the users it found itself
	// changing that users does not list (a cascade's deactivations).
	write func(tx *gorm.DB) (touched []string, err error)
	// tree, when set, returns the change of the location tree the write
	// made (nil: none).
	tree func() *location.Change
	// links reports that the write changes organisations or links.
	links bool
	// inv, when set, is re-checked once the transaction holds the lock on
	// every active super admin, before the write.
	inv *invariant
	// record, when set, records the change's audit events instead of ch's
	// one event (events come last: recording locks the audit chain).
	record func(tx *gorm.DB) error
}

// commit runs a guarded change and publishes its result:
//
//  1. under the checker's publish lock (so that nothing is published in
//     between), it re-resolves the actor on the current snapshot;
//  2. in one transaction it re-checks the super admin invariant (if any),
//     writes, builds the next snapshot from the transaction's own reads of
//     every affected user (and the tree and affiliations, when they
//     change), and judges it against the current one (see judge): a gain
//     the actor could not grant rolls everything back;
//  3. it records the audit event in the same transaction, commits, and
//     publishes exactly the snapshot it judged.
//
// A refusal is audited (Allowed false) and returned matching ErrForbidden.
func (a *Admin) commit(ctx context.Context, actor Subject, g guarded) error {
	return a.observed(ctx, actor, g.ch, func(ctx context.Context) error { return a.commitObserved(ctx, actor, g) })
}

// commitObserved is commit inside the change's span.
func (a *Admin) commitObserved(ctx context.Context, actor Subject, g guarded) error {
	var refused error
	// Each attempt re-reads the snapshot and re-judges the change; the
	// publish lock is not held across the backoff between attempts, so
	// Sync and other writers in this process go on meanwhile.
	err := dbx.Retry(ctx, func() error {
		refused = nil
		return a.attempt(ctx, actor, g, &refused)
	})
	if refused != nil && errors.Is(err, refused) {
		return a.refuse(ctx, actor, g.ch, refused)
	}
	return err
}

// attempt is one try of commit: judge and write g under the publish lock in
// one transaction, and publish the snapshot it judged.
func (a *Admin) attempt(ctx context.Context, actor Subject, g guarded, refusedOut *error) error {
	var refused error
	defer func() { *refusedOut = refused }()
	return a.c.publishBuilt(func(cur *snapshot.Snapshot) (*snapshot.Snapshot, error) {
		st, err := a.resolveActor(cur, actor)
		if err != nil {
			refused = err
			return nil, err
		}
		var next *snapshot.Snapshot
		err = dbx.TxOnce(ctx, a.db, func(tx *gorm.DB) error {
			if g.inv != nil {
				admins, err := lockSuperAdmins(tx)
				if err != nil {
					return err
				}
				if refused = g.inv.check(admins); refused != nil {
					return refused
				}
				if testHookGuarded != nil {
					testHookGuarded()
				}
			}
			touched, err := g.write(tx)
			if err != nil {
				return err
			}
			var moved string
			if next, moved, err = a.next(ctx, tx, cur, g, touched); err != nil {
				return err
			}
			affected := slices.Concat(g.users, touched)
			if moved != "" {
				affected = append(affected, usersAround(cur, next, moved)...)
			}
			if refused = judge(cur, next, st, affected, moved, a.now()); refused != nil {
				return refused
			}
			if g.record != nil {
				return g.record(tx)
			}
			return a.audit.RecordTx(ctx, tx, g.ch.event(actor, true, ""))
		})
		return next, err
	})
}

// next builds the snapshot after g's write from cur and tx's reads, with
// snapshot.ApplyParts, as every other change is applied. It returns the moved
// location, if the tree change is a move.
func (a *Admin) next(ctx context.Context, tx *gorm.DB, cur *snapshot.Snapshot, g guarded, touched []string) (*snapshot.Snapshot, string, error) {
	p := snapshot.Parts{Users: slices.Concat(g.users, touched), Affiliations: g.links}
	var moved string
	if g.tree != nil {
		if ch := g.tree(); ch != nil {
			p.Tree = []location.Change{*ch}
			if ch.Kind == location.ChangeMoved {
				moved = ch.Location.ID
			}
		}
	}
	next := *cur
	if err := snapshot.ApplyParts(ctx, tx, &next, p); err != nil {
		return nil, "", err
	}
	return &next, moved, nil
}

// usersAround returns the users whose access a move of location id may
// change without any of their rows changing: those with a profile or grant
// in id's subtree (their anchors may change), and those with a grant at
// one of id's ancestors in next's tree (they come to cover the subtree).
func usersAround(cur *snapshot.Snapshot, next *snapshot.Snapshot, id string) []string {
	above := map[string]bool{}
	for _, anc := range next.Tree.Ancestors(id) {
		above[anc] = true
	}
	var out []string
	cur.Users.Each(func(uid string, u *snapshot.UserState) bool {
		if u.HoldsWithin(cur, id) {
			out = append(out, uid)
			return true
		}
		for _, g := range u.Grants {
			if !g.Platform() && above[cur.GrantAt(u, &g)] {
				out = append(out, uid)
				break
			}
		}
		return true
	})
	return out
}

// publishBuilt publishes the snapshot build returns, holding the publish
// lock from the moment build sees the current snapshot until the new one
// is current, so that what build judged is exactly what is published. It
// publishes nothing when build fails.
func (c *Checker) publishBuilt(build func(cur *snapshot.Snapshot) (*snapshot.Snapshot, error)) error {
	c.publishMu.Lock()
	defer c.publishMu.Unlock()
	next, err := build(c.snap.Load())
	if err != nil {
		return err
	}
	c.storeSnapshot(next)
	return nil
}

// refuse audits a refused change and returns err. Only refusals (errors
// matching ErrForbidden) are audited; anything else is bad input, which
// names no change, and is returned as it is.
func (a *Admin) refuse(ctx context.Context, actor Subject, ch change, err error) error {
	if !errors.Is(err, ErrForbidden) {
		return err
	}
	reason := refusedForbidden
	if errors.Is(err, ErrLastSuperAdmin) {
		reason = refusedLastSuperAdmin
	}
	ctx, span := a.c.obs.startChange(ctx, actor, ch)
	ev := ch.event(actor, false, reason)
	var rerr error
	if actor.UserID == "" && !actor.system {
		// Record would fill an empty ActorID with "system"; an anonymous
		// actor stays anonymous, as in anonymous decision events. The
		// asynchronous writer keeps it, and Flush makes it durable before
		// the refusal is returned.
		if !a.audit.RecordAsync(ev) {
			rerr = errors.New("audit buffer full or log closed")
		} else {
			rerr = a.audit.Flush(ctx)
		}
	} else {
		rerr = a.audit.Record(ctx, ev)
	}
	a.c.obs.endRefusal(ctx, span, actor, ch, reason, rerr)
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("audit refusal: %w", rerr))
	}
	return err
}

// guard runs a change's pre-checks on the current snapshot and then the
// change: validate returns bad input (not audited) and fills g; allowed
// returns the operation's own permission rule for the resolved actor. A
// refusal from either rule, or from the result (see commit), is audited.
func (a *Admin) guard(ctx context.Context, actor Subject, g *guarded,
	validate func(snap *snapshot.Snapshot) error, allowed func(snap *snapshot.Snapshot, st actorState) error) error {
	snap := a.c.snapshot()
	if err := validate(snap); err != nil {
		return err
	}
	st, err := a.resolveActor(snap, actor)
	if err == nil && allowed != nil {
		err = allowed(snap, st)
	}
	if err != nil {
		return a.refuse(ctx, actor, g.ch, err)
	}
	return a.commit(ctx, actor, *g)
}

// apply runs write and the change's audit event in one transaction, for
// the changes that give no user a permission and publish their own part of
// the snapshot afterwards (impersonation sessions).
func (a *Admin) apply(ctx context.Context, actor Subject, ch change, write func(tx *gorm.DB) error) error {
	return a.observed(ctx, actor, ch, func(ctx context.Context) error {
		return dbx.Tx(ctx, a.db, func(tx *gorm.DB) error {
			if err := write(tx); err != nil {
				return err
			}
			return a.audit.RecordTx(ctx, tx, ch.event(actor, true, ""))
		})
	})
}
