package audit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestQuery_FiltersByEveryField(t *testing.T) {
	l, _ := newTestLog(t)
	ctx := context.Background()
	base := t0.Truncate(time.Microsecond)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	seed := []Event{
		{At: at(0), Type: TypeGrant, ActorID: "a1", UserID: "u1", LocationID: "l1"},          // 1
		{At: at(1), Type: TypeRevoke, ActorID: "a1", UserID: "u2", LocationID: "l1"},         // 2
		{At: at(2), Type: TypeGrant, ActorID: "a2", UserID: "u1", LocationID: "l2"},          // 3
		{At: at(3), Type: TypeLogin, ActorID: "u1", UserID: "u1"},                            // 4
		{At: at(4), Type: TypeGrant, ActorID: "a1", UserID: "u1", LocationID: "l2"},          // 5
		{At: at(5), Type: TypeDecisionDenied, ActorID: "A1", UserID: "U1", LocationID: "L1"}, // 6: case differs
	}
	for _, e := range seed {
		require.NoError(t, l.Record(ctx, e))
	}
	tests := []struct {
		name string
		q    Query
		want []int64
	}{
		{"no filter returns everything", Query{}, []int64{1, 2, 3, 4, 5, 6}},
		{"actor", Query{ActorID: "a1"}, []int64{1, 2, 5}},
		{"actor compares byte for byte", Query{ActorID: "A1"}, []int64{6}},
		{"target user", Query{UserID: "u1"}, []int64{1, 3, 4, 5}},
		{"location", Query{LocationID: "l2"}, []int64{3, 5}},
		{"type", Query{Type: TypeGrant}, []int64{1, 3, 5}},
		{"combined filters", Query{ActorID: "a1", Type: TypeGrant, LocationID: "l2"}, []int64{5}},
		{"since is inclusive", Query{Since: at(2)}, []int64{3, 4, 5, 6}},
		{"until is exclusive", Query{Until: at(2)}, []int64{1, 2}},
		{"time range", Query{Since: at(1), Until: at(4)}, []int64{2, 3, 4}},
		{"since a nanosecond after an event excludes it", Query{Since: at(1).Add(time.Nanosecond), Until: at(3)}, []int64{3}},
		{"until a nanosecond after an event includes it", Query{Until: at(0).Add(time.Nanosecond)}, []int64{1}},
		{"since in another time zone", Query{Since: at(4).In(time.FixedZone("Y", -5*3600))}, []int64{5, 6}},
		{"empty range", Query{Since: at(2), Until: at(2)}, []int64{}},
		{"after seq", Query{AfterSeq: 4}, []int64{5, 6}},
		{"after seq with filter", Query{UserID: "u1", AfterSeq: 3}, []int64{4, 5}},
		{"limit", Query{Type: TypeGrant, Limit: 2}, []int64{1, 3}},
		{"unknown value matches nothing", Query{ActorID: "nobody"}, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.Query(ctx, tt.q)
			require.NoError(t, err)
			assert.Equal(t, tt.want, seqs(got))
		})
	}
}

func TestQuery_PagesWithDefaultAndMaximumLimit(t *testing.T) {
	l, _ := newTestLog(t, WithBuffer(300))
	ctx := context.Background()
	for i := 0; i < 250; i++ {
		require.True(t, l.RecordAsync(Event{Type: TypeDecisionDenied, ActorID: "u1"}))
	}

	first, err := l.Query(ctx, Query{})
	require.NoError(t, err)
	require.Len(t, first, DefaultLimit)
	assert.Equal(t, int64(1), first[0].Seq)

	var got []int64
	var after int64
	for {
		page, err := l.Query(ctx, Query{Limit: 70, AfterSeq: after})
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		assert.LessOrEqual(t, len(page), 70)
		got = append(got, seqs(page)...)
		after = page[len(page)-1].Seq
	}
	require.Len(t, got, 250)
	for i, s := range got {
		assert.Equal(t, int64(i+1), s)
	}

	max, err := l.Query(ctx, Query{Limit: MaxLimit})
	require.NoError(t, err)
	assert.Len(t, max, 250)
}

func TestQuery_RejectsMalformedQueries(t *testing.T) {
	l, _ := newTestLog(t)
	tests := []struct {
		name string
		q    Query
	}{
		{"negative limit", Query{Limit: -1}},
		{"limit above maximum", Query{Limit: MaxLimit + 1}},
		{"negative after seq", Query{AfterSeq: -1}},
		{"until before since", Query{Since: t0, Until: t0.Add(-time.Second)}},
		{"actor too long", Query{ActorID: strings.Repeat("a", MaxIDLen+1)}},
		{"user not utf-8", Query{UserID: "\xff"}},
		{"location with nul", Query{LocationID: "a\x00"}},
		{"type too long", Query{Type: strings.Repeat("t", MaxNameLen+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := l.Query(context.Background(), tt.q)
			assert.ErrorIs(t, err, ErrInvalidInput)
			assert.Nil(t, got)
		})
	}
}
