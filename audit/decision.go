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
		l.wake()
	}
	return true
}

// wake has the writer drain the decision queues now.
func (l *Log) wake() {
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

// takeDecisions moves queued decisions into batch, up to maxBatch events.
func (l *Log) takeDecisions(batch []pending) []pending {
	for len(batch) < maxBatch {
		d, ok := l.decisions.pop()
		if !ok {
			break
		}
		batch = l.appendDecision(batch, &d)
	}
	return l.takeCodes(batch)
}

// appendDecision appends d to batch as an event, or drops and counts it
// when it is invalid.
func (l *Log) appendDecision(batch []pending, d *Decision) []pending {
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
		return batch
	}
	return append(batch, pending{ev: e, details: "{}"})
}

// ring is a bounded multi-producer, single-consumer queue (after Dmitry
// Vyukov's bounded MPMC queue): each slot carries a sequence number that
// tells producers and the consumer whose turn it is.
type ring[T any] struct {
	mask  uint64
	slots []ringSlot[T]
	_     [64]byte
	enq   atomic.Uint64
	_     [64]byte
	deq   atomic.Uint64
}

type ringSlot[T any] struct {
	seq atomic.Uint64
	v   T
}

func newRing[T any](capacity int) *ring[T] {
	n := 1
	for n < capacity {
		n <<= 1
	}
	r := &ring[T]{mask: uint64(n - 1), slots: make([]ringSlot[T], n)}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

func (r *ring[T]) half() uint64 { return (r.mask + 1) / 2 }

// len is the number of queued events (approximate under concurrency).
func (r *ring[T]) len() uint64 { return r.enq.Load() - r.deq.Load() }

func (r *ring[T]) push(v *T) bool {
	pos := r.enq.Load()
	for {
		s := &r.slots[pos&r.mask]
		seq := s.seq.Load()
		switch diff := int64(seq) - int64(pos); {
		case diff == 0:
			if r.enq.CompareAndSwap(pos, pos+1) {
				s.v = *v
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

// peek returns the next value pop would return, without taking it; for
// the single consumer only.
func (r *ring[T]) peek() (*T, bool) {
	pos := r.deq.Load()
	s := &r.slots[pos&r.mask]
	if s.seq.Load() != pos+1 {
		return nil, false
	}
	return &s.v, true
}

// pop is called by the single consumer only.
func (r *ring[T]) pop() (T, bool) {
	var zero T
	pos := r.deq.Load()
	s := &r.slots[pos&r.mask]
	if s.seq.Load() != pos+1 {
		return zero, false
	}
	v := s.v
	s.v = zero
	r.deq.Store(pos + 1)
	s.seq.Store(pos + r.mask + 1)
	return v, true
}
