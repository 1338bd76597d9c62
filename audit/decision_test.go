package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordDecision_WrittenOnFlushQueryAndClose(t *testing.T) {
	l, _ := newTestLog(t, WithClock(fixedClock()), WithDrainInterval(time.Hour))
	ctx := context.Background()
	require.True(t, l.RecordDecision(Decision{At: t0, ActorID: "u1", LocationID: "M1", Module: "m", Action: "a", Reason: "no_grant"}))
	got, err := l.Query(ctx, Query{})
	require.NoError(t, err)
	require.Len(t, got, 1, "query drains queued decisions first")
	assert.Equal(t, TypeDecisionDenied, got[0].Type)
	assert.Equal(t, "u1", got[0].ActorID)
	assert.Equal(t, "M1", got[0].LocationID)
	assert.Equal(t, "no_grant", got[0].Reason)
	require.NotNil(t, got[0].Allowed)
	assert.False(t, *got[0].Allowed)

	require.True(t, l.RecordDecision(Decision{At: t0, ActorID: "u2", Module: "m", Action: "a", Allowed: true}))
	require.NoError(t, l.Flush(ctx))
	events := all(t, l)
	require.Len(t, events, 2)
	assert.Equal(t, TypeDecisionAllowed, events[1].Type)
	require.NoError(t, l.Verify(ctx))
}

func TestRecordDecision_DoesNotAllocate(t *testing.T) {
	l := newStoppedLog(t, WithBuffer(1<<16))
	d := Decision{At: t0, ActorID: "u1", LocationID: "M1", Module: "m", Action: "a", Reason: "no_grant"}
	allocs := testing.AllocsPerRun(1000, func() { l.RecordDecision(d) })
	assert.Zero(t, allocs)
}

func TestRecordDecision_OverflowIsCountedAndRecorded(t *testing.T) {
	l := newStoppedLog(t, WithBuffer(4))
	var accepted []bool
	for range 6 {
		accepted = append(accepted, l.RecordDecision(Decision{At: t0, Module: "m", Action: "a"}))
	}
	assert.Equal(t, []bool{true, true, true, true, false, false}, accepted)
	assert.Equal(t, int64(2), l.Dropped())
	go l.run()
	ctx := context.Background()
	require.NoError(t, l.Flush(ctx))
	events := all(t, l)
	require.Len(t, events, 5)
	assert.Equal(t, TypeDecisionsDropped, events[0].Type)
	assert.EqualValues(t, 2, events[0].Details["dropped"])
	require.NoError(t, l.Close())
	assert.False(t, l.RecordDecision(Decision{At: t0, Module: "m", Action: "a"}), "closed")
}

func TestRecordDecision_ConcurrentProducersLoseNothing(t *testing.T) {
	l, _ := newTestLog(t, WithBuffer(1<<12))
	const producers, each = 4, 200
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				for !l.RecordDecision(Decision{At: t0, ActorID: fmt.Sprintf("p%d", p), Module: "m", Action: fmt.Sprint(i)}) {
					// full: the writer drains at half capacity; retry
				}
			}
		}()
	}
	wg.Wait()
	events := all(t, l)
	decisions := 0
	seen := map[string]bool{}
	for _, e := range events {
		if e.Type == TypeDecisionDenied {
			decisions++
			seen[e.ActorID+"/"+e.Action] = true
		}
	}
	assert.Equal(t, producers*each, decisions)
	assert.Len(t, seen, producers*each, "each decision exactly once")
	require.NoError(t, l.Verify(context.Background()))
}

func TestRecordDecision_InvalidEventIsDroppedAndCounted(t *testing.T) {
	l, _ := newTestLog(t)
	long := fmt.Sprintf("%0200d", 0)
	require.True(t, l.RecordDecision(Decision{At: t0, ActorID: long, Module: "m", Action: "a"}))
	require.NoError(t, l.Flush(context.Background()))
	events := all(t, l)
	require.Len(t, events, 1)
	assert.Equal(t, TypeDecisionsDropped, events[0].Type)
}
