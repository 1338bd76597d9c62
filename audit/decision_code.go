package audit

import (
	"runtime"
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
// once when a shard is half full, and by Query, Verify, Flush and Close; a
// full shard drops and counts.
//
// The queue has up to two shards per processor (at most maxShards, none
// smaller than minShard codes: a small buffer, or one processor, is one
// shard), so that checks running on several cores do not all write one
// shared position: with one ring, two cores recording flat out took 60 ns
// a code, with shards 8-23 ns (BenchmarkDecisionQueueParallel). The writer
// merges the shards by time.
type DecisionQueue struct {
	log    *Log
	shards []*ring[DecisionCode] // nil without a log or decoder
	// tokens hands out shard numbers (*int into nums); its per-processor
	// caches keep giving a processor the same one.
	tokens sync.Pool
	nums   []int
	next   atomic.Uint32 // for tokens.New
	decode func(c *DecisionCode, d *Decision) bool
}

const (
	minShard  = 256
	maxShards = 64
)

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
	capacity := cap(l.pending)
	n := 1 // one processor: nothing to contend with, and no pool to pay for
	if procs := runtime.GOMAXPROCS(0); procs > 1 {
		n = max(1, min(2*procs, maxShards, capacity/minShard))
	}
	for i := range n {
		q.shards = append(q.shards, newRing[DecisionCode]((capacity+n-1)/n))
		q.nums = append(q.nums, i)
	}
	// Handing out pointers into nums: Get never allocates.
	q.tokens.New = func() any { return &q.nums[int(q.next.Add(1)-1)%n] }
	l.queuesMu.Lock()
	defer l.queuesMu.Unlock()
	qs := append(slices.Clone(l.queueList()), q)
	l.queueSet.Store(&qs)
	return q
}

// Record queues c without allocating, locking or waiting, as
// RecordDecision does. It returns false when the log is closed (or the
// queue was made without a log or decoder), or when the shard it goes to is
// full (the event is dropped and counted).
func (q *DecisionQueue) Record(c *DecisionCode) bool {
	if q.shards == nil || q.log.closedFlag.Load() {
		return false
	}
	r := q.shards[0]
	if len(q.shards) > 1 {
		tk := q.tokens.Get().(*int)
		r = q.shards[*tk]
		q.tokens.Put(tk)
	}
	if !r.push(c) {
		q.log.drop(1)
		return false
	}
	if r.len() == r.half() {
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
		for _, r := range q.shards {
			n += int(r.len())
		}
	}
	return n
}

// takeCodes moves queued codes into batch, decoded, up to maxBatch events.
// It merges the shards by time: codes recorded in the order of their times
// are written in that order, and codes of one shard of the same time in
// the order they were recorded.
func (l *Log) takeCodes(batch []pending) []pending {
	queues := l.queueList()
	for len(batch) < maxBatch {
		var (
			from *DecisionQueue
			next *ring[DecisionCode]
			at   int64
		)
		for _, q := range queues {
			for _, r := range q.shards {
				if c, ok := r.peek(); ok && (next == nil || c.At < at) {
					from, next, at = q, r, c.At
				}
			}
		}
		if next == nil {
			break
		}
		c, _ := next.pop()
		d := Decision{At: time.UnixMicro(c.At)}
		if !from.decode(&c, &d) {
			l.drop(1)
			continue
		}
		batch = l.appendDecision(batch, &d)
	}
	return batch
}

// queues are a Log's decision queues (fields of Log).
type queues struct {
	queuesMu sync.Mutex                       // serialises registrations
	queueSet atomic.Pointer[[]*DecisionQueue] // read by the writer
}
