package audit

import (
	"sync/atomic"
	"testing"
)

// BenchmarkDecisionQueueParallel records codes from every core, each
// goroutine for its own run of actors, into a queue large enough to hold
// them all (no writer runs): the cost of the queue's shared positions.
func BenchmarkDecisionQueueParallel(b *testing.B) {
	l := newStoppedLog(b, WithBuffer(1<<23))
	q := l.NewDecisionQueue(decodeAny)
	var next atomic.Uint32
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := DecisionCode{Actor: next.Add(1) * 7919}
		for pb.Next() {
			c.Actor++
			q.Record(&c)
		}
	})
	b.ReportMetric(float64(len(q.shards)), "shards")
}
