package audit

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// codeNames is a decoder's table: index+1 → name, 0 → none.
var codeNames = []string{"u1", "u2", "M1"}

func decodeTest(c *DecisionCode, d *Decision) bool {
	name := func(i uint32) (string, bool) {
		if i == 0 {
			return "", true
		}
		if int(i) > len(codeNames) {
			return "", false
		}
		return codeNames[i-1], true
	}
	var ok1, ok2, ok3 bool
	d.ActorID, ok1 = name(c.Actor)
	d.ImpersonatorID, ok2 = name(c.Impersonator)
	d.LocationID, ok3 = name(c.Location)
	d.Module, d.Action, d.Reason, d.Allowed = "m", "a", "no_grant", c.Reason == 1
	return ok1 && ok2 && ok3
}

func TestDecisionCode_Is24BytesWithoutPointers(t *testing.T) {
	assert.EqualValues(t, 24, unsafe.Sizeof(DecisionCode{}))
}

func TestDecisionQueue_DecodedAndWrittenLikeRecordDecision(t *testing.T) {
	l, _ := newTestLog(t, WithClock(fixedClock()), WithDrainInterval(time.Hour))
	ctx := context.Background()
	q := l.NewDecisionQueue(decodeTest)
	at := t0.Add(1234567 * time.Nanosecond)
	require.True(t, q.Record(&DecisionCode{At: at.UnixMicro(), Actor: 1, Impersonator: 2, Location: 3}))
	require.True(t, l.RecordDecision(Decision{At: t0, ActorID: "u2", Module: "m", Action: "a", Reason: "no_grant"}))
	require.True(t, q.Record(&DecisionCode{At: t0.UnixMicro(), Actor: 2, Reason: 1}))
	got, err := l.Query(ctx, Query{})
	require.NoError(t, err, "query drains the queues first")
	require.Len(t, got, 3)
	// The codes' events, found by what tells them apart (a queue's shards
	// are merged by time, and these two were recorded out of it).
	var e, allowed Event
	for _, ev := range got {
		switch {
		case ev.ImpersonatorID != "":
			e = ev
		case ev.Type == TypeDecisionAllowed:
			allowed = ev
		}
	}
	assert.Equal(t, "u2", allowed.ActorID)
	assert.True(t, allowed.At.Equal(t0.Truncate(time.Microsecond)), "the allowed code's time: %v", allowed.At)
	assert.Equal(t, TypeDecisionDenied, e.Type)
	assert.Equal(t, "u1", e.ActorID)
	assert.Equal(t, "u2", e.ImpersonatorID)
	assert.Equal(t, "M1", e.LocationID)
	assert.Equal(t, "no_grant", e.Reason)
	assert.True(t, e.At.Equal(at.Truncate(time.Microsecond)), "the code's time, to the microsecond: %v", e.At)
	require.NoError(t, l.Verify(ctx))
}

func TestDecisionQueue_UndecodableCodeIsDroppedAndCounted(t *testing.T) {
	l, _ := newTestLog(t, WithClock(fixedClock()), WithDrainInterval(time.Hour))
	ctx := context.Background()
	q := l.NewDecisionQueue(decodeTest)
	require.True(t, q.Record(&DecisionCode{At: t0.UnixMicro(), Actor: 99}))
	require.True(t, q.Record(&DecisionCode{At: t0.UnixMicro(), Actor: 1}))
	require.NoError(t, l.Flush(ctx))
	events := all(t, l)
	require.Len(t, events, 2)
	assert.Equal(t, TypeDecisionsDropped, events[0].Type)
	assert.EqualValues(t, 1, events[0].Details["dropped"])
	assert.Equal(t, "u1", events[1].ActorID)
}

func TestDecisionQueue_DoesNotAllocate(t *testing.T) {
	l := newStoppedLog(t, WithBuffer(1<<16))
	q := l.NewDecisionQueue(decodeTest)
	c := DecisionCode{At: t0.UnixMicro(), Actor: 1}
	assert.Zero(t, testing.AllocsPerRun(1000, func() { q.Record(&c) }))
}

func TestDecisionQueue_OverflowIsCountedAndClosedLogRefuses(t *testing.T) {
	l := newStoppedLog(t, WithBuffer(4))
	q := l.NewDecisionQueue(decodeTest)
	c := DecisionCode{At: t0.UnixMicro(), Actor: 1}
	var accepted []bool
	for range 6 {
		accepted = append(accepted, q.Record(&c))
	}
	assert.Equal(t, []bool{true, true, true, true, false, false}, accepted)
	assert.Equal(t, int64(2), l.Dropped())
	go l.run()
	require.NoError(t, l.Flush(context.Background()))
	events := all(t, l)
	require.Len(t, events, 5)
	assert.Equal(t, TypeDecisionsDropped, events[0].Type)
	require.NoError(t, l.Close())
	assert.False(t, q.Record(&c), "closed")
}

func TestDecisionQueue_WithoutDecoderRefuses(t *testing.T) {
	l := newStoppedLog(t)
	assert.False(t, l.NewDecisionQueue(nil).Record(&DecisionCode{}))
}

// decodeAny names actor i "a<i>" and gives the code's Location as its
// location ID.
func decodeAny(c *DecisionCode, d *Decision) bool {
	d.ActorID, d.LocationID = fmt.Sprintf("a%d", c.Actor), fmt.Sprintf("L%06d", c.Location)
	d.Module, d.Action, d.Reason = "m", "a", "no_grant"
	return true
}

// Codes recorded from several goroutines into a sharded queue are all
// written, once each; codes recorded in the order of their times are
// written in that order (the writer merges the shards by time).
func TestDecisionQueue_ShardedCodesAreAllWrittenInOrder(t *testing.T) {
	l := newStoppedLog(t, WithBuffer(1<<14), WithDrainInterval(time.Hour))
	q := l.NewDecisionQueue(decodeAny)
	want := 1
	if procs := runtime.GOMAXPROCS(0); procs > 1 {
		want = min(2*procs, maxShards)
	}
	require.Len(t, q.shards, want, "the buffer is large enough to shard")
	const workers, each, actors = 4, 600, 12
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Each worker's actors are its own; Location numbers an
				// actor's codes.
				c := DecisionCode{At: t0.UnixMicro(), Actor: uint32(w*actors + i%actors), Location: uint32(i / actors)}
				assert.True(t, q.Record(&c))
			}
		}()
	}
	wg.Wait()
	// Then codes one after the other, each later than the last, cycling
	// over actors of every shard: written in the order of their times.
	const later = 256
	for i := range later {
		c := DecisionCode{At: t0.Add(time.Duration(i+1) * time.Microsecond).UnixMicro(), Actor: uint32(1000 + i%64), Location: uint32(i)}
		require.True(t, q.Record(&c))
	}
	go l.run()
	require.NoError(t, l.Flush(context.Background()))
	events := all(t, l)
	require.Len(t, events, workers*each+later)
	seen := map[string]bool{}
	for i, e := range events {
		if i > 0 {
			require.False(t, e.At.Before(events[i-1].At), "event %d at %v after one at %v", i, e.At, events[i-1].At)
		}
		key := e.ActorID + "/" + e.LocationID
		require.False(t, seen[key], "written once: %s", key)
		seen[key] = true
	}
	require.NoError(t, l.Close())
}
