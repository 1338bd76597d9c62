package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbtest"
)

var (
	key1 = []byte("0123456789abcdef0123456789abcdef")
	key2 = []byte("fedcba9876543210fedcba9876543210")
)

// recordN appends n change events.
func recordN(t testing.TB, l *Log, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		require.NoError(t, l.Record(context.Background(), Event{
			Type: TypeGrant, ActorID: "admin", UserID: fmt.Sprintf("u%d", i), Details: map[string]any{"n": i},
		}))
	}
}

// rows returns every stored event row in Seq order.
func rows(t testing.TB, db *gorm.DB) []record {
	t.Helper()
	var rs []record
	require.NoError(t, db.Order("seq").Find(&rs).Error)
	return rs
}

// rewrite replaces the stored chain with rs, rehashed from index from
// onwards by relink, and moves the head to its end, as someone with write
// access to the database but not the key would.
func rewrite(t testing.TB, db *gorm.DB, rs []record, from int, relink func(r *record)) {
	t.Helper()
	for i := from; i < len(rs); i++ {
		if i > 0 {
			rs[i].PrevHash = rs[i-1].Hash
		}
		rs[i].Hash = hashRecord(&rs[i])
		relink(&rs[i])
	}
	require.NoError(t, db.Exec("DELETE FROM townhall_audit_events").Error)
	require.NoError(t, db.Create(&rs).Error)
	last := rs[len(rs)-1]
	require.NoError(t, db.Exec("UPDATE townhall_audit_head SET last_seq = ?, last_hash = ? WHERE id = 1", last.Seq, last.Hash).Error)
}

func TestKeyedChain_RecomputedChainWithoutTheKeyIsDetected(t *testing.T) {
	l, db := newTestLog(t, WithClock(fixedClock()), WithKey("k1", key1))
	unkeyed := New(db)
	t.Cleanup(func() { unkeyed.Close() })
	ctx := context.Background()
	tests := []struct {
		name          string
		relink        func(r *record)
		unkeyedPasses bool
		wantSeq       int64
		problem       string
	}{
		{"old macs kept", func(*record) {}, true, 3, "mac does not verify"},
		{"macs under a guessed key", func(r *record) { r.MAC = macOf(key2, r.KeyID, r.Hash) }, true, 3, "mac does not verify"},
		{"macs under a guessed key of another id", func(r *record) { r.KeyID, r.MAC = "k2", macOf(key2, "k2", r.Hash) }, true, 0, ""},
		{"keys stripped from the edit on", func(r *record) { r.KeyID, r.MAC = "", "" }, false, 3, "unkeyed event after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resetChain(t, db)
			recordN(t, l, 5)
			require.NoError(t, l.Verify(ctx))
			rs := rows(t, db)
			rs[2].Reason = "forged"
			rewrite(t, db, rs, 2, tt.relink)

			if tt.unkeyedPasses {
				require.NoError(t, unkeyed.Verify(ctx), "without the key the rewrite passes: that is what the key is for")
			} else {
				require.ErrorIs(t, unkeyed.Verify(ctx), ErrTampered, "a keyed chain never turns unkeyed, key or no key")
			}
			err := l.Verify(ctx)
			if tt.wantSeq == 0 {
				assert.ErrorIs(t, err, ErrUnknownKey)
				return
			}
			assert.Equal(t, tt.wantSeq, tamperSeq(t, err))
			assert.Contains(t, err.Error(), tt.problem)
		})
	}

	t.Run("every key stripped", func(t *testing.T) {
		resetChain(t, db)
		recordN(t, l, 5)
		rs := rows(t, db)
		rs[2].Reason = "forged"
		rewrite(t, db, rs, 0, func(r *record) { r.KeyID, r.MAC = "", "" })
		require.NoError(t, unkeyed.Verify(ctx))
		err := l.Verify(ctx)
		assert.Equal(t, int64(5), tamperSeq(t, err))
		assert.Contains(t, err.Error(), "newest event is not keyed")
	})
}

func TestKeyedChain_RotatedKeysKeepVerifying(t *testing.T) {
	old, db := newTestLog(t, WithKey("k1", key1))
	ctx := context.Background()
	recordN(t, old, 3)
	require.NoError(t, old.Close())

	rotated := New(db, WithKey("k1", key1), WithKey("k2", key2))
	t.Cleanup(func() { rotated.Close() })
	require.NoError(t, rotated.RecordKey(ctx))
	recordN(t, rotated, 2)
	require.NoError(t, rotated.Verify(ctx))

	var keyIDs []string
	for _, r := range rows(t, db) {
		keyIDs = append(keyIDs, r.KeyID)
	}
	assert.Equal(t, []string{"k1", "k1", "k1", "k2", "k2", "k2"}, keyIDs)
	events := all(t, rotated)
	assert.Equal(t, TypeAuditKey, events[3].Type)
	assert.Equal(t, map[string]any{"key_id": "k2"}, events[3].Details)

	onlyNew := New(db, WithKey("k2", key2))
	t.Cleanup(func() { onlyNew.Close() })
	assert.ErrorIs(t, onlyNew.Verify(ctx), ErrUnknownKey, "events under k1 need k1")
	assert.NoError(t, onlyNew.Verify(ctx, WithKeys(map[string][]byte{"k1": key1})))
	assert.ErrorIs(t, onlyNew.Verify(ctx, WithKeys(map[string][]byte{"k1": key2})), ErrTampered, "a wrong key is not the key")
}

func TestRecordKey_AppendsOnlyWhenTheKeyChanges(t *testing.T) {
	l, db := newTestLog(t, WithKey("k1", key1))
	ctx := context.Background()
	require.NoError(t, l.RecordKey(ctx))
	assert.Empty(t, rows(t, db), "an empty chain needs no mark")

	plain := New(db)
	t.Cleanup(func() { plain.Close() })
	recordN(t, plain, 2)
	require.NoError(t, plain.RecordKey(ctx), "without a key it does nothing")
	assert.Len(t, rows(t, db), 2)
	assert.ErrorIs(t, l.Verify(ctx), ErrTampered, "a keyed verifier rejects a chain ending unkeyed")

	require.NoError(t, l.RecordKey(ctx))
	require.NoError(t, l.RecordKey(ctx))
	rs := rows(t, db)
	require.Len(t, rs, 3, "marked once")
	assert.Equal(t, TypeAuditKey, rs[2].Type)
	assert.Equal(t, "k1", rs[2].KeyID)
	assert.NoError(t, l.Verify(ctx))
}

func TestWithKey_RejectsInvalidKeys(t *testing.T) {
	db := dbtest.New(t)
	migrate(t, db)
	ctx := context.Background()
	tests := []struct {
		name string
		opts []Option
	}{
		{"empty key id", []Option{WithKey("", key1)}},
		{"short key", []Option{WithKey("k1", key1[:MinKeyLen-1])}},
		{"key id with nul", []Option{WithKey("k\x001", key1)}},
		{"key id too long", []Option{WithKey(string(make([]byte, MaxIDLen+1)), key1)}},
		{"one id, two keys", []Option{WithKey("k1", key1), WithKey("k1", key2)}},
		{"nil signer key", []Option{WithSigner(nil, &memSink{})}},
		{"nil sink", []Option{WithSigner(signerKey(t, 1), nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(db, tt.opts...)
			defer l.Close()
			assert.ErrorIs(t, l.Err(), ErrInvalidInput)
			assert.ErrorIs(t, l.Record(ctx, Event{Type: TypeGrant}), ErrInvalidInput)
			assert.ErrorIs(t, l.Verify(ctx), ErrInvalidInput)
			_, err := l.Checkpoint(ctx)
			assert.ErrorIs(t, err, ErrInvalidInput)
			l.RecordAsync(Event{Type: TypeDecisionDenied})
			assert.ErrorIs(t, l.Flush(ctx), ErrInvalidInput, "the writer refuses too")
			assert.Empty(t, rows(t, db), "nothing written")
		})
	}
}

// legacyRecord and legacyHead are the tables as the first version created
// them, before keys, anchors and checkpoints.
type legacyRecord struct {
	Seq            int64     `gorm:"column:seq;primaryKey;autoIncrement:false"`
	At             time.Time `gorm:"column:at;precision:6;not null"`
	Type           string    `gorm:"column:type;size:128;not null"`
	ActorID        string    `gorm:"column:actor_id;size:64;not null"`
	ImpersonatorID string    `gorm:"column:impersonator_id;size:64;not null"`
	UserID         string    `gorm:"column:user_id;size:64;not null"`
	LocationID     string    `gorm:"column:location_id;size:64;not null"`
	Module         string    `gorm:"column:module;size:128;not null"`
	Action         string    `gorm:"column:action;size:128;not null"`
	Reason         string    `gorm:"column:reason;size:1024;not null"`
	Allowed        *bool     `gorm:"column:allowed"`
	Details        string    `gorm:"column:details;type:text;not null"`
	PrevHash       string    `gorm:"column:prev_hash;size:64;not null"`
	Hash           string    `gorm:"column:hash;size:64;not null"`
}

func (legacyRecord) TableName() string { return "townhall_audit_events" }

type legacyHead struct {
	ID       int    `gorm:"column:id;primaryKey;autoIncrement:false"`
	LastSeq  int64  `gorm:"column:last_seq;not null"`
	LastHash string `gorm:"column:last_hash;size:64;not null"`
}

func (legacyHead) TableName() string { return "townhall_audit_head" }

func TestMigrate_UpgradesUnkeyedTablesThatKeepVerifying(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	require.NoError(t, db.AutoMigrate(&legacyRecord{}, &legacyHead{}))
	prev := ""
	for i := int64(1); i <= 3; i++ {
		r := record{Seq: i, At: t0.Add(time.Duration(i) * time.Second).Truncate(time.Microsecond), Type: TypeGrant, ActorID: "admin", PrevHash: prev}
		r.Hash = hashRecord(&r)
		prev = r.Hash
		require.NoError(t, db.Create(&legacyRecord{Seq: r.Seq, At: r.At, Type: r.Type, ActorID: r.ActorID, PrevHash: r.PrevHash, Hash: r.Hash}).Error)
	}
	require.NoError(t, db.Create(&legacyHead{ID: headID, LastSeq: 3, LastHash: prev}).Error)

	migrate(t, db)
	migrate(t, db)
	h, err := readHead(db)
	require.NoError(t, err)
	assert.Len(t, h.LogID, 32)

	plain := New(db)
	t.Cleanup(func() { plain.Close() })
	require.NoError(t, plain.Verify(ctx), "existing events verify as they were")

	keyed := New(db, WithKey("k1", key1))
	t.Cleanup(func() { keyed.Close() })
	require.NoError(t, keyed.RecordKey(ctx))
	recordN(t, keyed, 1)
	assert.NoError(t, keyed.Verify(ctx), "an unkeyed prefix, then keyed events")
	assert.NoError(t, plain.Verify(ctx))

	// The first keyed event's MAC covers the unkeyed prefix through its
	// prev_hash: rewriting the prefix is detected.
	rs := rows(t, db)
	rs[0].ActorID = "mallory"
	rewrite(t, db, rs, 0, func(*record) {})
	assert.Equal(t, int64(4), tamperSeq(t, keyed.Verify(ctx)))
}

// BenchmarkLink measures what linking one event costs the appender: the
// SHA-256 chain hash alone (the baseline, an unkeyed log) and with the
// HMAC-SHA256 of a keyed log.
func BenchmarkLink(b *testing.B) {
	r := record{Seq: 123456, At: t0, Type: TypeDecisionDenied, ActorID: "u1", LocationID: "loc-1",
		Module: "occurrences", Action: "create", Reason: "no_grant", Allowed: boolPtr(false), Details: "{}",
		PrevHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	b.Run("unkeyed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.Hash = hashRecord(&r)
		}
	})
	b.Run("keyed", func(b *testing.B) {
		var ring keyRing
		if err := ring.add("k1", key1); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			r.Hash = hashRecord(&r)
			r.MAC = ring.mac("k1", r.Hash)
		}
	})
}

// BenchmarkRecordKeyed measures a synchronous append, in its own
// transaction, to an unkeyed log (the baseline) and to a keyed one.
func BenchmarkRecordKeyed(b *testing.B) {
	e := Event{Type: TypeDecisionDenied, ActorID: "u1", LocationID: "loc-1", Module: "occurrences", Action: "create", Reason: "no_grant", Allowed: boolPtr(false)}
	for _, bc := range []struct {
		name string
		opts []Option
	}{
		{"unkeyed", nil},
		{"keyed", []Option{WithKey("k1", key1)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l, _ := newTestLog(b, bc.opts...)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := l.Record(ctx, e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
