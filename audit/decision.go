package audit

import (
	"sync/atomic"
	"time"
)

// Decision is a decision event in the compact form RecordDecision takes: a
// fixed-size value of strings the caller already holds, so recording it
// allocates nothing.
type Decision struct {
	At                                 time.Time
	ActorID, ImpersonatorID            string
	LocationID, Module, Action, Reason string
	Allowed                            bool
}

// RecordDecision queues a decision event for the background writer without
// allocating, locking or waiting: it claims a slot of a fixed-size ring
// with one atomic operation. When the ring is full the event is dropped and
// counted; the count is recorded as a TypeDecisionsDropped event by the
// next write. The writer drains the ring every drain interval, or at once
// when the ring is half full. Query, Verify, Flush and Close write what is
// queued first. The event is validated when written; an invalid one is
// dropped and counted.
func (l *Log) RecordDecision(d Decision) bool {
	if l == nil || l.decisions == nil || l.closedFlag.Load() {
		return false
	}
	if !l.decisions.push(&d) {
		l.drop(1)
		return false
	}
	if l.decisions.len() == l.decisions.half() {
		select {
		case l.poke <- struct{}{}:
		default:
		}
	}
	return true
}

// takeDecisions moves queued decisions into batch, up to maxBatch events.
func (l *Log) takeDecisions(batch []pending) []pending {
	for len(batch) < maxBatch {
		d, ok := l.decisions.pop()
		if !ok {
			break
		}
		allowed := d.Allowed
		typ := TypeDecisionDenied
		if allowed {
			typ = TypeDecisionAllowed
		}
		e := Event{
			At: canonicalTime(d.At), Type: typ, ActorID: d.ActorID, ImpersonatorID: d.ImpersonatorID,
			LocationID: d.LocationID, Module: d.Module, Action: d.Action, Reason: d.Reason, Allowed: &allowed,
		}
		if validate(&e) != nil {
			l.drop(1)
			continue
		}
		batch = append(batch, pending{ev: e, details: "{}"})
	}
	return batch
}

// decisionRing is a bounded multi-producer, single-consumer queue (after
// Dmitry Vyukov's bounded MPMC queue): each slot carries a sequence number
// that tells producers and the consumer whose turn it is.
type decisionRing struct {
	mask  uint64
	slots []decisionSlot
	_     [64]byte
	enq   atomic.Uint64
	_     [64]byte
	deq   atomic.Uint64
}

type decisionSlot struct {
	seq atomic.Uint64
	d   Decision
}

func newDecisionRing(capacity int) *decisionRing {
	n := 1
	for n < capacity {
		n <<= 1
	}
	r := &decisionRing{mask: uint64(n - 1), slots: make([]decisionSlot, n)}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

func (r *decisionRing) half() uint64 { return (r.mask + 1) / 2 }

// len is the number of queued events (approximate under concurrency).
func (r *decisionRing) len() uint64 { return r.enq.Load() - r.deq.Load() }

func (r *decisionRing) push(d *Decision) bool {
	pos := r.enq.Load()
	for {
		s := &r.slots[pos&r.mask]
		seq := s.seq.Load()
		switch diff := int64(seq) - int64(pos); {
		case diff == 0:
			if r.enq.CompareAndSwap(pos, pos+1) {
				s.d = *d
				s.seq.Store(pos + 1)
				return true
			}
			pos = r.enq.Load()
		case diff < 0:
			return false // full: the consumer has not freed this slot yet
		default:
			pos = r.enq.Load()
		}
	}
}

// pop is called by the single consumer only.
func (r *decisionRing) pop() (Decision, bool) {
	pos := r.deq.Load()
	s := &r.slots[pos&r.mask]
	if s.seq.Load() != pos+1 {
		return Decision{}, false
	}
	d := s.d
	s.d = Decision{}
	r.deq.Store(pos + 1)
	s.seq.Store(pos + r.mask + 1)
	return d, true
}
