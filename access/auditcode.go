package access

import (
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/snapshot"
)

// Decision events leave the check path as 24-byte integer codes (the
// user's and impersonator's dense indexes, the location's tree index, the
// action's index, the reason's index, the time in microseconds and the
// snapshot's epoch) that the audit writer decodes into strings on its own
// goroutine (decodeDecision). A code is decoded against the latest
// snapshot of the epoch it was made in: within an epoch, indexes only ever
// gain names (users and locations are added, soft-deleted or moved, never
// removed), so that snapshot names every index the code holds. A change
// that removes a user from the table, removes a location or reloads the
// tree starts a new epoch (snapshot.epoch). The checker keeps the latest
// snapshot of the last epochSlots epochs; a code older than that, which
// would take epochSlots such changes within one drain interval, is dropped
// and counted as a full queue's events are.

// epochSlots is how many epochs' snapshots a Checker keeps for decoding.
const epochSlots = 16

// allowedBit marks an allowed decision in DecisionCode.Reason.
const allowedBit = 0x80

// storeSnapshot makes next current, first as the latest of its epoch.
func (c *Checker) storeSnapshot(next *snapshot.Snapshot) {
	c.epochs[next.Epoch%epochSlots].Store(next)
	c.snap.Store(next)
}

// stampMicros is stamp in Unix microseconds, without building a Time under
// the coarse clock.
func (c *Checker) stampMicros() int64 {
	if c.coarse != nil {
		return c.coarse.ns.Load() / 1000
	}
	return c.stamp().UnixMicro()
}

// recordCode queues decision d of sub on action ai (-1 when none) at tree
// index loc (-1 when none) of snap as a code. It reports false, queueing
// nothing, when d does not fit one (the caller records it with strings).
func (c *Checker) recordCode(snap *snapshot.Snapshot, sub *subject, ai int, loc int32, d *Decision) bool {
	ri := reasonIndex(d.Reason)
	// reasonIndex counts unknown reasons (none today) as the last one.
	if ri == numReasons-1 && d.Reason != checkReasons[ri] || uint(ai+1) > 0xffff {
		return false
	}
	k := audit.DecisionCode{At: c.stampMicros(), Location: uint32(loc + 1), Action: uint16(ai + 1),
		Reason: uint8(ri), Tag: uint8(snap.Epoch)}
	if d.Allowed {
		k.Reason |= allowedBit
	}
	if sub.u != nil {
		k.Actor = sub.u.Idx + 1
	}
	if sub.imp != nil {
		k.Impersonator = sub.imp.Idx + 1
	}
	c.codes.Record(&k)
	return true
}

// decodeDecision is the audit writer's decoder of recordCode's codes.
func (c *Checker) decodeDecision(k *audit.DecisionCode, d *audit.Decision) bool {
	snap := c.epochs[k.Tag%epochSlots].Load()
	if snap == nil || uint8(snap.Epoch) != k.Tag {
		return false
	}
	user := func(i uint32) (string, bool) {
		if i == 0 {
			return "", true
		}
		u := snap.Users.At(i - 1)
		if u == nil {
			return "", false
		}
		return u.ID, true
	}
	var okActor, okImp bool
	d.ActorID, okActor = user(k.Actor)
	d.ImpersonatorID, okImp = user(k.Impersonator)
	if !okActor || !okImp {
		return false
	}
	if k.Location != 0 {
		if d.LocationID = snap.View.IDIndex(int32(k.Location - 1)); d.LocationID == "" {
			return false
		}
	}
	if k.Action != 0 {
		ai := int(k.Action) - 1
		if ai >= len(snap.Reg.Actions) {
			return false
		}
		d.Module, d.Action = snap.Reg.Actions[ai].Module, snap.Reg.Actions[ai].Action
	}
	ri := int(k.Reason &^ allowedBit)
	if ri >= numReasons {
		return false
	}
	d.Reason, d.Allowed = string(checkReasons[ri]), k.Reason&allowedBit != 0
	return true
}
