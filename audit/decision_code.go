package audit

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DecisionCode is a decision event in a fixed-size integer form: 24 bytes
// without pointers, for a caller that names users, locations, actions and
// reasons by dense indexes of its own. Queueing one (DecisionQueue.Record)
// copies three words; the queue's decoder turns it into a Decision on the
// writer's goroutine, off the caller's path. Only At means anything to the
// log; the other fields are the caller's, read by its decoder alone.
type DecisionCode struct {
	At                            int64 // Unix microseconds (the precision events are stored with)
	Actor, Impersonator, Location uint32
	Action                        uint16
	Reason, Tag                   uint8
}

// DecisionQueue queues DecisionCodes for the log's writer, which decodes
// them with the function given to NewDecisionQueue and writes them as
// RecordDecision's events are written: drained every drain interval, at
// once when half full, and by Query, Verify, Flush and Close; a full queue
// drops and counts.
type DecisionQueue struct {
	log    *Log
	codes  *ring[DecisionCode]
	decode func(c *DecisionCode, d *Decision) bool
}

// NewDecisionQueue returns a queue of decision codes that the writer turns
// into events with decode, which fills d (its At already set from the
// code) and reports false for a code it cannot decode (the event is then
// dropped and counted). decode runs on the writer's goroutine, one code at
// a time. A queue lives as long as its log (a Checker makes one).
func (l *Log) NewDecisionQueue(decode func(c *DecisionCode, d *Decision) bool) *DecisionQueue {
	q := &DecisionQueue{log: l, decode: decode}
	if l == nil || decode == nil {
		return q
	}
	q.codes = newRing[DecisionCode](cap(l.pending))
	l.queuesMu.Lock()
	defer l.queuesMu.Unlock()
	qs := append(slices.Clone(l.queueList()), q)
	l.queueSet.Store(&qs)
	return q
}

// Record queues c without allocating, locking or waiting, as
// RecordDecision does. It returns false when the log is closed (or the
// queue was made without a log or decoder), or when the queue is full (the
// event is dropped and counted).
func (q *DecisionQueue) Record(c *DecisionCode) bool {
	if q.codes == nil || q.log.closedFlag.Load() {
		return false
	}
	if !q.codes.push(c) {
		q.log.drop(1)
		return false
	}
	if q.codes.len() == q.codes.half() {
		q.log.wake()
	}
	return true
}

// queueList returns the registered queues.
func (l *Log) queueList() []*DecisionQueue {
	if qs := l.queueSet.Load(); qs != nil {
		return *qs
	}
	return nil
}

// queued is the number of codes waiting in the queues.
func (l *Log) queued() int {
	n := 0
	for _, q := range l.queueList() {
		n += int(q.codes.len())
	}
	return n
}

// takeCodes moves queued codes into batch, decoded, up to maxBatch events.
func (l *Log) takeCodes(batch []pending) []pending {
	for _, q := range l.queueList() {
		for len(batch) < maxBatch {
			c, ok := q.codes.pop()
			if !ok {
				break
			}
			d := Decision{At: time.UnixMicro(c.At)}
			if !q.decode(&c, &d) {
				l.drop(1)
				continue
			}
			batch = l.appendDecision(batch, &d)
		}
	}
	return batch
}

// queues are a Log's decision queues (fields of Log).
type queues struct {
	queuesMu sync.Mutex                       // serialises registrations
	queueSet atomic.Pointer[[]*DecisionQueue] // read by the writer
}
