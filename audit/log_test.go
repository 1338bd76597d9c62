package audit

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/actor"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
)

// t0 is the fixed time of the test clock.
var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// fixedClock returns a clock that starts at t0 and advances one second per
// call, so events get distinct, predictable times.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	next := t0
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := next
		next = next.Add(time.Second)
		return now
	}
}

// migrate creates the audit tables on db under the migration lock.
func migrate(t testing.TB, db *gorm.DB) {
	t.Helper()
	require.NoError(t, dbx.Migrate(context.Background(), db, Migrate))
}

// newTestLog returns a log on a fresh migrated database, closed when t ends.
func newTestLog(t testing.TB, opts ...Option) (*Log, *gorm.DB) {
	t.Helper()
	db := dbtest.New(t)
	migrate(t, db)
	l := New(db, opts...)
	t.Cleanup(func() { l.Close() })
	return l, db
}

// all returns every event in the log.
func all(t testing.TB, l *Log) []Event {
	t.Helper()
	var out []Event
	var after int64
	for {
		page, err := l.Query(context.Background(), Query{AfterSeq: after, Limit: MaxLimit})
		require.NoError(t, err)
		out = append(out, page...)
		if len(page) < MaxLimit {
			return out
		}
		after = page[len(page)-1].Seq
	}
}

func boolPtr(b bool) *bool { return &b }

func TestMigrate_IsIdempotentAcrossPools(t *testing.T) {
	db, dsn := dbtest.NewWithDSN(t)
	other := dbtest.Open(t, dsn)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool := db
			if i%2 == 1 {
				pool = other
			}
			errs[i] = dbx.Migrate(context.Background(), pool, Migrate)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, dbx.Migrate(context.Background(), db, Migrate))

	var heads []head
	require.NoError(t, db.Find(&heads).Error)
	require.Len(t, heads, 1)
	assert.Len(t, heads[0].LogID, 32, "the log is named once")
	assert.Equal(t, head{ID: headID, LogID: heads[0].LogID}, heads[0])
}

func TestMigrate_RejectsNilDatabase(t *testing.T) {
	assert.ErrorIs(t, Migrate(nil), ErrInvalidInput)
}

func TestRecord_FillsTimeAndActor(t *testing.T) {
	l, _ := newTestLog(t, WithClock(func() time.Time { return t0 }))
	impersonated := actor.With(context.Background(), actor.Actor{UserID: "u-target", ImpersonatorID: "u-admin"})
	explicitAt := time.Date(2023, 1, 2, 3, 4, 5, 678999999, time.FixedZone("X", 3600))

	tests := []struct {
		name             string
		ctx              context.Context
		in               Event
		wantActor        string
		wantImpersonator string
		wantAt           time.Time
	}{
		{"no actor in context records system", context.Background(), Event{Type: TypeGrant}, "system", "", t0.Truncate(time.Microsecond)},
		{"actor and impersonator come from context", impersonated, Event{Type: TypeGrant}, "u-target", "u-admin", t0.Truncate(time.Microsecond)},
		{"explicit actor keeps context impersonator when same user", impersonated, Event{Type: TypeGrant, ActorID: "u-target"}, "u-target", "u-admin", t0.Truncate(time.Microsecond)},
		{"explicit other actor gets no impersonator", impersonated, Event{Type: TypeLogin, ActorID: "u-other"}, "u-other", "", t0.Truncate(time.Microsecond)},
		{"anonymous actor in context records system", actor.With(context.Background(), actor.Actor{}), Event{Type: TypeGrant}, "system", "", t0.Truncate(time.Microsecond)},
		{"explicit time is kept in UTC at microseconds", context.Background(), Event{Type: TypeGrant, At: explicitAt}, "system", "", time.Date(2023, 1, 2, 2, 4, 5, 678999000, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, l.Record(tt.ctx, tt.in))
			events := all(t, l)
			require.NotEmpty(t, events)
			got := events[len(events)-1]
			assert.Equal(t, tt.wantActor, got.ActorID)
			assert.Equal(t, tt.wantImpersonator, got.ImpersonatorID)
			assert.Equal(t, tt.wantAt, got.At)
		})
	}
}

func TestRecord_RoundTripsEveryField(t *testing.T) {
	l, _ := newTestLog(t)
	in := []Event{
		{
			At: t0, Type: TypeDecisionDenied, ActorID: "u1", ImpersonatorID: "u2", UserID: "u3",
			LocationID: "loc-1", Module: "occurrences", Action: "create", Reason: "no_grant",
			Allowed: boolPtr(false),
			Details: map[string]any{"b": []any{"x", 1.5}, "a": map[string]any{"z": true, "y": nil}, "tag": "<&>"},
		},
		{At: t0, Type: TypeDecisionAllowed, ActorID: "u1", Allowed: boolPtr(true)},
		{At: t0, Type: TypeGrant, ActorID: "u1", LocationID: "*"},
	}
	for _, e := range in {
		require.NoError(t, l.Record(context.Background(), e))
	}
	got := all(t, l)
	require.Len(t, got, len(in))
	for i := range in {
		want := in[i]
		want.Seq = int64(i + 1)
		want.At = t0.Truncate(time.Microsecond)
		assert.Equal(t, want, got[i])
	}
	require.NoError(t, l.Verify(context.Background()))
}

// marshalPanics is a details value whose JSON encoding panics.
type marshalPanics struct{}

func (marshalPanics) MarshalJSON() ([]byte, error) { panic("boom") }

func TestRecord_RejectsInvalidEvents(t *testing.T) {
	l, _ := newTestLog(t)
	tests := []struct {
		name string
		e    Event
	}{
		{"missing type", Event{ActorID: "u1"}},
		{"type too long", Event{Type: strings.Repeat("t", MaxNameLen+1)}},
		{"actor id too long", Event{Type: TypeGrant, ActorID: strings.Repeat("a", MaxIDLen+1)}},
		{"impersonator id too long", Event{Type: TypeGrant, ImpersonatorID: strings.Repeat("a", MaxIDLen+1)}},
		{"user id too long", Event{Type: TypeGrant, UserID: strings.Repeat("a", MaxIDLen+1)}},
		{"location id too long", Event{Type: TypeGrant, LocationID: strings.Repeat("a", MaxIDLen+1)}},
		{"module too long", Event{Type: TypeGrant, Module: strings.Repeat("m", MaxNameLen+1)}},
		{"action too long", Event{Type: TypeGrant, Action: strings.Repeat("m", MaxNameLen+1)}},
		{"reason too long", Event{Type: TypeGrant, Reason: strings.Repeat("r", MaxReasonLen+1)}},
		{"invalid utf-8", Event{Type: TypeGrant, UserID: "\xff\xfe"}},
		{"nul byte", Event{Type: TypeGrant, Reason: "a\x00b"}},
		{"time before year 1000", Event{Type: TypeGrant, At: time.Date(999, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"details with a channel", Event{Type: TypeGrant, Details: map[string]any{"c": make(chan int)}}},
		{"details with a function", Event{Type: TypeGrant, Details: map[string]any{"f": func() {}}}},
		{"details with NaN", Event{Type: TypeGrant, Details: map[string]any{"n": math.NaN()}}},
		{"details whose encoding panics", Event{Type: TypeGrant, Details: map[string]any{"p": marshalPanics{}}}},
		{"details too long", Event{Type: TypeGrant, Details: map[string]any{"s": strings.Repeat("x", MaxDetailsLen)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, l.Record(context.Background(), tt.e), ErrInvalidInput)
			err := dbx.Tx(context.Background(), l.db, func(tx *gorm.DB) error {
				return l.RecordTx(context.Background(), tx, tt.e)
			})
			assert.ErrorIs(t, err, ErrInvalidInput)
			assert.False(t, l.RecordAsync(tt.e))
		})
	}
	assert.Empty(t, all(t, l))
	assert.Zero(t, l.Dropped(), "invalid events are not counted as dropped")
}

func TestRecordTx_RollsBackWithTheCaller(t *testing.T) {
	l, db := newTestLog(t)
	ctx := context.Background()
	require.NoError(t, l.Record(ctx, Event{Type: TypeGrant, UserID: "u1"}))

	failed := errors.New("change failed")
	err := dbx.Tx(ctx, db, func(tx *gorm.DB) error {
		require.NoError(t, l.RecordTx(ctx, tx, Event{Type: TypeGrant, UserID: "u2"}))
		return failed
	})
	require.ErrorIs(t, err, failed)
	require.NoError(t, l.Record(ctx, Event{Type: TypeGrant, UserID: "u3"}))

	events := all(t, l)
	require.Len(t, events, 2)
	assert.Equal(t, "u1", events[0].UserID)
	assert.Equal(t, "u3", events[1].UserID)
	assert.NoError(t, l.Verify(ctx))
}

func TestRecordTx_CommitsWithTheCaller(t *testing.T) {
	l, db := newTestLog(t)
	ctx := context.Background()
	err := dbx.Tx(ctx, db, func(tx *gorm.DB) error {
		// A statement already built on tx must not leak into the append.
		tx = tx.Model(&head{}).Where("id = ?", 42)
		if err := l.RecordTx(ctx, tx, Event{Type: TypeGrant, UserID: "u1"}); err != nil {
			return err
		}
		return l.RecordTx(ctx, tx, Event{Type: TypeRevoke, UserID: "u1"})
	})
	require.NoError(t, err)
	// Outside a transaction RecordTx opens its own.
	require.NoError(t, l.RecordTx(ctx, db, Event{Type: TypeGrant, UserID: "u2"}))

	events := all(t, l)
	require.Len(t, events, 3)
	assert.Equal(t, []int64{1, 2, 3}, seqs(events))
	assert.NoError(t, l.Verify(ctx))
}

func TestRecord_RejectsNilDatabaseAndTransaction(t *testing.T) {
	l := New(nil)
	defer l.Close()
	ctx := context.Background()
	assert.ErrorIs(t, l.Record(ctx, Event{Type: TypeGrant}), ErrInvalidInput)
	_, err := l.Query(ctx, Query{})
	assert.ErrorIs(t, err, ErrInvalidInput)
	assert.ErrorIs(t, l.Verify(ctx), ErrInvalidInput)

	ok, _ := newTestLog(t)
	assert.ErrorIs(t, ok.RecordTx(ctx, nil, Event{Type: TypeGrant}), ErrInvalidInput)
}

func seqs(events []Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}
