package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/dbx"
)

// resetChain empties the log, as a freshly migrated database.
func resetChain(t testing.TB, db *gorm.DB) {
	t.Helper()
	require.NoError(t, db.Exec("DELETE FROM townhall_audit_events").Error)
	require.NoError(t, db.Exec("UPDATE townhall_audit_head SET last_seq = 0, last_hash = '' WHERE id = 1").Error)
}

// lastRecord returns the stored row with the highest seq.
func lastRecord(t testing.TB, db *gorm.DB) record {
	t.Helper()
	var r record
	require.NoError(t, db.Order("seq DESC").Limit(1).Find(&r).Error)
	return r
}

// tamperSeq returns the Seq a TamperError names.
func tamperSeq(t testing.TB, err error) int64 {
	t.Helper()
	require.ErrorIs(t, err, ErrTampered)
	var te *TamperError
	require.True(t, errors.As(err, &te), "error %v is not a *TamperError", err)
	return te.Seq
}

func TestVerify_DetectsTampering(t *testing.T) {
	l, db := newTestLog(t, WithClock(fixedClock()))
	ctx := context.Background()
	exec := func(sql string, args ...any) func(t *testing.T) {
		return func(t *testing.T) {
			res := db.Exec(sql, args...)
			require.NoError(t, res.Error)
			require.Equal(t, int64(1), res.RowsAffected, sql)
		}
	}
	forge := func(validHash bool) func(t *testing.T) {
		return func(t *testing.T) {
			last := lastRecord(t, db)
			r := record{Seq: last.Seq + 1, At: last.At, Type: TypeGrant, ActorID: "mallory", PrevHash: last.Hash}
			r.Hash = hashRecord(&r)
			if !validHash {
				r.Hash = last.Hash
			}
			require.NoError(t, db.Create(&r).Error)
		}
	}
	tests := []struct {
		name    string
		tamper  func(t *testing.T)
		wantSeq int64
	}{
		{"edited reason", exec("UPDATE townhall_audit_events SET reason = ? WHERE seq = ?", "forged", 3), 3},
		{"edited actor of the first event", exec("UPDATE townhall_audit_events SET actor_id = ? WHERE seq = ?", "mallory", 1), 1},
		{"edited details", exec("UPDATE townhall_audit_events SET details = ? WHERE seq = ?", `{"n":2}`, 2), 2},
		{"edited outcome", exec("UPDATE townhall_audit_events SET allowed = ? WHERE seq = ?", true, 4), 4},
		{"edited time", exec("UPDATE townhall_audit_events SET at = ? WHERE seq = ?", t0.AddDate(0, 0, 1), 2), 2},
		{"edited hash", exec("UPDATE townhall_audit_events SET hash = ? WHERE seq = ?", fmt.Sprintf("%064d", 0), 5), 5},
		{"renumbered event", exec("UPDATE townhall_audit_events SET seq = ? WHERE seq = ?", 9, 5), 9},
		{"removed middle event", exec("DELETE FROM townhall_audit_events WHERE seq = ?", 3), 4},
		{"removed first event", exec("DELETE FROM townhall_audit_events WHERE seq = ?", 1), 2},
		{"removed last event", exec("DELETE FROM townhall_audit_events WHERE seq = ?", 5), 5},
		{"edited head", exec("UPDATE townhall_audit_head SET last_hash = ? WHERE id = 1", fmt.Sprintf("%064d", 0)), 5},
		{"inserted event with a valid hash", forge(true), 6},
		{"inserted event with a wrong hash", forge(false), 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resetChain(t, db)
			for i := 0; i < 5; i++ {
				require.NoError(t, l.Record(ctx, Event{
					Type: TypeDecisionDenied, ActorID: fmt.Sprintf("u%d", i), Allowed: boolPtr(false),
					Details: map[string]any{"n": i},
				}))
			}
			require.NoError(t, l.Verify(ctx), "untouched chain")
			tt.tamper(t)
			assert.Equal(t, tt.wantSeq, tamperSeq(t, l.Verify(ctx)))
		})
	}
}

func TestVerify_AcceptsGapsButNotRenumbering(t *testing.T) {
	l, db := newTestLog(t)
	ctx := context.Background()
	require.NoError(t, l.Verify(ctx))

	// Renumbering every event upwards, consistently rehashed and with the
	// head moved along, is how a gap looks to Verify: allowed.
	for i := 0; i < 3; i++ {
		require.NoError(t, l.Record(ctx, Event{Type: TypeGrant}))
	}
	var rs []record
	require.NoError(t, db.Order("seq").Find(&rs).Error)
	resetChain(t, db)
	prev := ""
	for i := range rs {
		rs[i].Seq = int64(i*10 + 1)
		rs[i].PrevHash = prev
		rs[i].Hash = hashRecord(&rs[i])
		prev = rs[i].Hash
	}
	require.NoError(t, db.Create(&rs).Error)
	require.NoError(t, db.Exec("UPDATE townhall_audit_head SET last_seq = ?, last_hash = ? WHERE id = 1", rs[2].Seq, prev).Error)
	require.NoError(t, l.Verify(ctx))

	require.NoError(t, l.Record(ctx, Event{Type: TypeRevoke}))
	events := all(t, l)
	assert.Equal(t, []int64{1, 11, 21, 22}, seqs(events))
	assert.NoError(t, l.Verify(ctx))

	// Seq is hashed: renumbering an event within a gap, order kept, is
	// still tampering.
	require.NoError(t, db.Exec("UPDATE townhall_audit_events SET seq = ? WHERE seq = ?", 15, 11).Error)
	assert.Equal(t, int64(15), tamperSeq(t, l.Verify(ctx)))
}

func TestVerify_WalksLongChainsInPages(t *testing.T) {
	n := 2*verifyPage + 17
	l, db := newTestLog(t, WithBuffer(n))
	ctx := context.Background()
	for i := 0; i < n; i++ {
		require.True(t, l.RecordAsync(Event{Type: TypeDecisionDenied, ActorID: fmt.Sprintf("u%d", i%7)}))
	}
	require.NoError(t, l.Verify(ctx))

	target := int64(verifyPage + 500)
	require.NoError(t, db.Exec("UPDATE townhall_audit_events SET actor_id = ? WHERE seq = ?", "mallory", target).Error)
	assert.Equal(t, target, tamperSeq(t, l.Verify(ctx)))
}

// TestRecord_ConcurrentAppendsFromTwoPools appends from several goroutines
// on two logs over two connection pools, as two processes would, while
// verifying, and checks that the chain verifies and holds every event.
func TestRecord_ConcurrentAppendsFromTwoPools(t *testing.T) {
	db, dsn := dbtest.NewWithDSN(t)
	other := dbtest.Open(t, dsn)
	migrate(t, db)
	logs := []*Log{New(db), New(other)}
	const workers, perWorker = 4, 15
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, len(logs)*workers*perWorker+100)
	for li, l := range logs {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perWorker; i++ {
					actorID := fmt.Sprintf("l%d-w%d", li, w)
					e := Event{Type: TypeGrant, ActorID: actorID, Details: map[string]any{"i": i}}
					switch i % 3 {
					case 0:
						errs <- l.Record(ctx, e)
					case 1:
						errs <- dbx.Tx(ctx, l.db, func(tx *gorm.DB) error { return l.RecordTx(ctx, tx, e) })
					default:
						e.Type = TypeDecisionDenied
						if !l.RecordAsync(e) {
							errs <- fmt.Errorf("async event %s/%d not enqueued", actorID, i)
						}
					}
				}
			}()
		}
	}
	verifyDone := make(chan struct{})
	go func() {
		defer close(verifyDone)
		for i := 0; i < 5; i++ {
			errs <- logs[i%2].Verify(ctx)
		}
	}()
	wg.Wait()
	<-verifyDone
	for _, l := range logs {
		require.NoError(t, l.Close())
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	require.NoError(t, logs[0].Verify(ctx))
	events := all(t, logs[1])
	require.Len(t, events, len(logs)*workers*perWorker)
	seen := map[string]bool{}
	for _, e := range events {
		key := fmt.Sprintf("%s/%v", e.ActorID, e.Details["i"])
		assert.False(t, seen[key], "duplicate %s", key)
		seen[key] = true
	}
	assert.Len(t, seen, len(logs)*workers*perWorker)
	assert.Equal(t, int64(len(events)), events[len(events)-1].Seq, "no gaps without rollbacks")
}
