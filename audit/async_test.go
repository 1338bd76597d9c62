package audit

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall/internal/dbtest"
)

// newStoppedLog is newTestLog with the writer not yet started, so a test
// controls exactly what is buffered.
func newStoppedLog(t testing.TB, opts ...Option) *Log {
	t.Helper()
	db := dbtest.New(t)
	migrate(t, db)
	return newLog(db, opts...)
}

func TestRecordAsync_WrittenBeforeQueryVerifyAndFlush(t *testing.T) {
	l, _ := newTestLog(t, WithClock(fixedClock()))
	ctx := context.Background()

	require.True(t, l.RecordAsync(Event{Type: TypeDecisionDenied, ActorID: "u1", Allowed: boolPtr(false)}))
	got, err := l.Query(ctx, Query{})
	require.NoError(t, err)
	require.Len(t, got, 1, "query waits for buffered events")
	assert.Equal(t, t0.Truncate(1000), got[0].At, "time taken when enqueued")
	assert.Equal(t, "u1", got[0].ActorID)

	require.True(t, l.RecordAsync(Event{Type: TypeDecisionDenied}))
	require.NoError(t, l.Verify(ctx))
	require.True(t, l.RecordAsync(Event{Type: TypeDecisionAllowed}))
	require.NoError(t, l.Flush(ctx))

	events := all(t, l)
	require.Len(t, events, 3)
	assert.Empty(t, events[1].ActorID, "an anonymous decision stays anonymous")
}

func TestRecordAsync_CopiesDetailsBeforeReturning(t *testing.T) {
	l, _ := newTestLog(t)
	details := map[string]any{"k": "v"}
	require.True(t, l.RecordAsync(Event{Type: TypeDecisionDenied, Details: details}))
	details["k"] = "changed"

	events := all(t, l)
	require.Len(t, events, 1)
	assert.Equal(t, map[string]any{"k": "v"}, events[0].Details)
}

func TestRecordAsync_CountsAndRecordsOverflow(t *testing.T) {
	l := newStoppedLog(t, WithBuffer(3))
	var accepted []bool
	for i := 0; i < 5; i++ {
		accepted = append(accepted, l.RecordAsync(Event{Type: TypeDecisionDenied}))
	}
	assert.Equal(t, []bool{true, true, true, false, false}, accepted)
	assert.Equal(t, int64(2), l.Dropped())

	go l.run()
	t.Cleanup(func() { l.Close() })
	events := all(t, l)
	require.Len(t, events, 4)
	var dropped []Event
	for _, e := range events {
		if e.Type == TypeDecisionsDropped {
			dropped = append(dropped, e)
		}
	}
	require.Len(t, dropped, 1)
	assert.Equal(t, map[string]any{"dropped": float64(2)}, dropped[0].Details)
	assert.Equal(t, "system", dropped[0].ActorID)
	assert.Zero(t, l.Dropped())
	assert.NoError(t, l.Verify(context.Background()))
}

func TestRecordAsync_DropCountAloneIsRecordedOnFlush(t *testing.T) {
	l := newStoppedLog(t, WithBuffer(1))
	require.True(t, l.RecordAsync(Event{Type: TypeDecisionDenied}))
	require.False(t, l.RecordAsync(Event{Type: TypeDecisionDenied}))
	go l.run()
	t.Cleanup(func() { l.Close() })
	require.NoError(t, l.Flush(context.Background()))
	// The buffered event may have been written before the flush request
	// arrived; the drop count is written by then either way.
	events := all(t, l)
	require.Len(t, events, 2)
	assert.ElementsMatch(t, []string{TypeDecisionDenied, TypeDecisionsDropped}, []string{events[0].Type, events[1].Type})
}

func TestRecordAsync_WriteFailureIsCountedAndReported(t *testing.T) {
	db := dbtest.New(t) // not migrated: every write fails
	l := New(db)
	t.Cleanup(func() { l.Close() })
	require.True(t, l.RecordAsync(Event{Type: TypeDecisionDenied}))
	require.True(t, l.RecordAsync(Event{Type: TypeDecisionDenied}))

	ctx := context.Background()
	err := l.Flush(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "async write")
	assert.Equal(t, int64(2), l.Dropped())

	// Once the database works again, the next flush records the count.
	migrate(t, db)
	require.NoError(t, l.Flush(ctx))
	assert.Zero(t, l.Dropped())
	events := all(t, l)
	require.Len(t, events, 1)
	assert.Equal(t, TypeDecisionsDropped, events[0].Type)
	assert.Equal(t, map[string]any{"dropped": float64(2)}, events[0].Details)
}

func TestRecordAsync_DoesNotAllocate(t *testing.T) {
	l := newStoppedLog(t, WithBuffer(8))
	e := Event{Type: TypeDecisionDenied, ActorID: "u1", LocationID: "loc-1", Module: "occurrences", Action: "create", Allowed: boolPtr(false)}
	allocs := testing.AllocsPerRun(100, func() {
		if !l.RecordAsync(e) {
			t.Fatal("not enqueued")
		}
		<-l.pending
	})
	assert.Zero(t, allocs)
}

func TestFlush_StopsWaitingWhenContextEnds(t *testing.T) {
	l := newStoppedLog(t)
	require.True(t, l.RecordAsync(Event{Type: TypeDecisionDenied}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, l.Flush(ctx), context.Canceled)
	_, err := l.Query(ctx, Query{})
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, l.Verify(ctx), context.Canceled)

	go l.run()
	require.NoError(t, l.Close())
	assert.Len(t, all(t, l), 1, "close flushes")
}

func TestClose_FlushesIsIdempotentAndRefusesWrites(t *testing.T) {
	l, db := newTestLog(t)
	ctx := context.Background()
	require.True(t, l.RecordAsync(Event{Type: TypeDecisionDenied}))
	require.NoError(t, l.Close())
	require.NoError(t, l.Close(), "second close")

	select {
	case <-l.done:
	default:
		t.Fatal("writer goroutine still running after Close")
	}
	assert.False(t, l.RecordAsync(Event{Type: TypeDecisionDenied}))
	assert.Zero(t, l.Dropped(), "refused after close is not an overflow")
	assert.ErrorIs(t, l.Record(ctx, Event{Type: TypeGrant}), ErrClosed)
	assert.ErrorIs(t, l.RecordTx(ctx, db, Event{Type: TypeGrant}), ErrClosed)
	assert.NoError(t, l.Flush(ctx))

	events, err := l.Query(ctx, Query{})
	require.NoError(t, err, "query works after close")
	assert.Len(t, events, 1, "close flushed the buffer")
	assert.NoError(t, l.Verify(ctx))
}

// BenchmarkRecordAsync measures enqueuing a decision event, what a check
// pays, with the writer running: events it cannot keep up with are dropped
// and counted, which costs the same. The allocations reported are the
// writer's, amortised; enqueuing itself allocates nothing
// (TestRecordAsync_DoesNotAllocate).
func BenchmarkRecordAsync(b *testing.B) {
	l, _ := newTestLog(b)
	e := Event{Type: TypeDecisionDenied, ActorID: "u1", LocationID: "loc-1", Module: "occurrences", Action: "create", Reason: "no_grant", Allowed: boolPtr(false)}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l.RecordAsync(e)
	}
}

// BenchmarkRecord is the baseline RecordAsync beats: a synchronous append
// in its own transaction.
func BenchmarkRecord(b *testing.B) {
	l, _ := newTestLog(b)
	e := Event{Type: TypeDecisionDenied, ActorID: "u1", LocationID: "loc-1", Module: "occurrences", Action: "create", Reason: "no_grant", Allowed: boolPtr(false)}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := l.Record(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}
