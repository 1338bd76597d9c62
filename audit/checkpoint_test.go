package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/dbtest"
)

// memSink keeps checkpoints in memory, as a host's external store would.
type memSink struct {
	mu  sync.Mutex
	cps []Checkpoint
	err error
}

func (s *memSink) Put(_ context.Context, c Checkpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cps = append(s.cps, c)
	return s.err
}

func (s *memSink) all() []Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Checkpoint(nil), s.cps...)
}

// signerKey returns a deterministic Ed25519 private key.
func signerKey(t testing.TB, n byte) ed25519.PrivateKey {
	t.Helper()
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
}

// newSignedLog returns a keyed log signing checkpoints into its sink, and
// its public key.
func newSignedLog(t testing.TB, opts ...Option) (*Log, *gorm.DB, *memSink, ed25519.PublicKey) {
	t.Helper()
	sink := &memSink{}
	key := signerKey(t, 1)
	l, db := newTestLog(t, append([]Option{WithClock(fixedClock()), WithKey("k1", key1), WithSigner(key, sink)}, opts...)...)
	return l, db, sink, key.Public().(ed25519.PublicKey)
}

// truncate removes the events after seq, with the checkpoints of them
// stored in the database, and rewinds the head to seq: the attack no hash
// chain alone detects.
func truncate(t testing.TB, db *gorm.DB, seq int64) {
	t.Helper()
	require.NoError(t, db.Exec("DELETE FROM townhall_audit_events WHERE seq > ?", seq).Error)
	require.NoError(t, db.Exec("DELETE FROM townhall_audit_checkpoints WHERE seq > ?", seq).Error)
	rewindHead(t, db, seq)
}

// rewindHead points the head at event seq, leaving the events after it.
func rewindHead(t testing.TB, db *gorm.DB, seq int64) {
	t.Helper()
	var at record
	require.NoError(t, db.Where("seq = ?", seq).Take(&at).Error)
	require.NoError(t, db.Exec("UPDATE townhall_audit_head SET last_seq = ?, last_hash = ? WHERE id = 1", seq, at.Hash).Error)
}

func TestCheckpoint_DetectsTailTruncationWithHeadRewind(t *testing.T) {
	l, db, _, pub := newSignedLog(t)
	ctx := context.Background()
	recordN(t, l, 5)
	cp, err := l.Checkpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5), cp.Seq)
	require.NoError(t, l.Verify(ctx, WithCheckpoints(pub, cp)))

	truncate(t, db, 3)
	require.NoError(t, l.Verify(ctx), "the shortened chain is consistent in itself")
	err = l.Verify(ctx, WithCheckpoints(pub, cp))
	assert.Equal(t, int64(5), tamperSeq(t, err))
	assert.Contains(t, err.Error(), "the log ends at event 3, before the checkpoint at 5")

	// Appending after the cut does not hide it: event 5 is another event now.
	recordN(t, l, 3)
	assert.Equal(t, int64(5), tamperSeq(t, l.Verify(ctx, WithCheckpoints(pub, cp))))
}

func TestCheckpoint_DetectsEditsAndRemovalsAtOrBeforeIt(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		tamper func(t *testing.T, db *gorm.DB)
	}{
		{"recomputed chain after an edit", func(t *testing.T, db *gorm.DB) {
			rs := rows(t, db)
			rs[1].Reason = "forged"
			rewrite(t, db, rs, 1, func(*record) {})
		}},
		{"recomputed chain after a removal", func(t *testing.T, db *gorm.DB) {
			rs := rows(t, db)
			rs = append(rs[:1], rs[2:]...)
			rewrite(t, db, rs, 1, func(*record) {})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, db, _, pub := newSignedLog(t)
			unkeyed := New(db)
			t.Cleanup(func() { unkeyed.Close() })
			recordN(t, l, 4)
			cp, err := l.Checkpoint(ctx)
			require.NoError(t, err)
			tt.tamper(t, db)
			require.NoError(t, db.Exec("DELETE FROM townhall_audit_checkpoints").Error)
			require.NoError(t, unkeyed.Verify(ctx), "a consistent chain without the key or checkpoints")
			assert.ErrorIs(t, unkeyed.Verify(ctx, WithCheckpoints(pub, cp)), ErrTampered, "the public key and the checkpoint alone detect it")
		})
	}
}

func TestCheckpoint_ForgedIsRejected(t *testing.T) {
	l, db, _, pub := newSignedLog(t)
	ctx := context.Background()
	recordN(t, l, 3)
	cp, err := l.Checkpoint(ctx)
	require.NoError(t, err)
	require.NoError(t, cp.Verify(pub))

	forgeries := map[string]func(c *Checkpoint){
		"later seq":      func(c *Checkpoint) { c.Seq = 9 },
		"other hash":     func(c *Checkpoint) { c.Hash = bytes.Repeat([]byte{7}, 32) },
		"other time":     func(c *Checkpoint) { c.At = c.At.Add(time.Hour) },
		"other key id":   func(c *Checkpoint) { c.KeyID = "k2" },
		"other log":      func(c *Checkpoint) { c.LogID = "another" },
		"no signature":   func(c *Checkpoint) { c.Signature = nil },
		"flipped bit":    func(c *Checkpoint) { c.Signature = append([]byte(nil), c.Signature...); c.Signature[0] ^= 1 },
		"truncated hash": func(c *Checkpoint) { c.Hash = c.Hash[:31] },
	}
	for name, forge := range forgeries {
		t.Run(name, func(t *testing.T) {
			f := cp
			forge(&f)
			assert.ErrorIs(t, f.Verify(pub), ErrInvalidCheckpoint)
			assert.ErrorIs(t, l.Verify(ctx, WithCheckpoints(pub, f)), ErrInvalidCheckpoint)
		})
	}

	t.Run("forged row in the database", func(t *testing.T) {
		require.NoError(t, db.Exec("UPDATE townhall_audit_checkpoints SET seq = 2 WHERE seq = 3").Error)
		err := l.Verify(ctx)
		assert.Equal(t, int64(2), tamperSeq(t, err), "the log checks the checkpoints its key signed")
		assert.Contains(t, err.Error(), "not signed")
	})
}

func TestCheckpoint_FromAnotherKeyOrLogIsRejected(t *testing.T) {
	l, db, _, pub := newSignedLog(t)
	ctx := context.Background()
	recordN(t, l, 3)

	otherKey := signerKey(t, 2)
	stranger := New(db, WithKey("k1", key1), WithSigner(otherKey, &memSink{}))
	t.Cleanup(func() { stranger.Close() })
	foreign, err := stranger.Checkpoint(ctx)
	require.NoError(t, err, "the other key signs the same head")
	assert.ErrorIs(t, l.Verify(ctx, WithCheckpoints(pub, foreign)), ErrInvalidCheckpoint)
	assert.ErrorIs(t, l.Verify(ctx, WithPublicKey(pub)), ErrTampered, "a stored checkpoint of another key")
	otherPub := otherKey.Public().(ed25519.PublicKey)
	assert.NoError(t, l.Verify(ctx, WithPublicKey(otherPub)), "with the other key given, its stored checkpoint counts")
	require.NoError(t, db.Exec("DELETE FROM townhall_audit_checkpoints").Error)

	// The same key and the same events in another database: another log.
	twin, _, _, _ := newSignedLog(t)
	recordN(t, twin, 3)
	cpTwin, err := twin.Checkpoint(ctx)
	require.NoError(t, err)
	require.NoError(t, cpTwin.Verify(pub), "signed by the same key")
	err = l.Verify(ctx, WithCheckpoints(pub, cpTwin))
	assert.ErrorIs(t, err, ErrInvalidCheckpoint)
	assert.Contains(t, err.Error(), "of log")
}

func TestCheckpoint_ReplayedOldCheckpoint(t *testing.T) {
	l, db, _, pub := newSignedLog(t)
	ctx := context.Background()
	recordN(t, l, 3)
	old, err := l.Checkpoint(ctx)
	require.NoError(t, err)
	recordN(t, l, 3)
	newer, err := l.Checkpoint(ctx)
	require.NoError(t, err)

	assert.NoError(t, l.Verify(ctx, WithCheckpoints(pub, old)), "an old checkpoint stays valid evidence of its prefix")
	assert.NoError(t, l.Verify(ctx, WithCheckpoints(pub, old, newer)))

	truncate(t, db, 4)
	assert.NoError(t, l.Verify(ctx, WithCheckpoints(pub, old)),
		"replayed alone it proves only events 1 to 3, which are intact")
	assert.Equal(t, int64(6), tamperSeq(t, l.Verify(ctx, WithCheckpoints(pub, old, newer))),
		"it does not hide the cut the newer checkpoint shows")
	assert.Equal(t, int64(6), tamperSeq(t, l.Verify(ctx, WithCheckpoints(pub, newer), WithCheckpoints(pub, old))))
}

func TestCheckpoint_RefusesToSignATamperedChain(t *testing.T) {
	l, db, sink, _ := newSignedLog(t)
	ctx := context.Background()
	recordN(t, l, 3)
	_, err := l.Checkpoint(ctx)
	require.NoError(t, err)
	recordN(t, l, 2)
	require.NoError(t, db.Exec("UPDATE townhall_audit_events SET reason = 'forged' WHERE seq = 4").Error)

	_, err = l.Checkpoint(ctx)
	assert.Equal(t, int64(4), tamperSeq(t, err))
	assert.Len(t, sink.all(), 1, "nothing signed after the first")

	// A fresh process verifies from the newest checkpoint its key signed.
	again := New(db, WithKey("k1", key1), WithSigner(signerKey(t, 1), sink))
	t.Cleanup(func() { again.Close() })
	_, err = again.Checkpoint(ctx)
	assert.Equal(t, int64(4), tamperSeq(t, err))
}

func TestCheckpoint_StoredHandedToTheSinkAndSignedAtClose(t *testing.T) {
	l, db, sink, pub := newSignedLog(t, WithCheckpointInterval(1000, time.Hour))
	ctx := context.Background()
	recordN(t, l, 2)
	cp, err := l.Checkpoint(ctx)
	require.NoError(t, err)
	assert.Equal(t, []Checkpoint{cp}, sink.all())
	assert.Equal(t, "k1", cp.KeyID)
	var stored []storedCheckpoint
	require.NoError(t, db.Find(&stored).Error)
	require.Len(t, stored, 1)
	assert.Equal(t, cp, stored[0].checkpoint())

	l.RecordDecision(Decision{At: t0, ActorID: "u1", Module: "occurrences", Action: "delete", Reason: "no_grant"})
	require.NoError(t, l.Close())
	assert.Equal(t, TypeDecisionDenied, all(t, l)[2].Type)
	cps := sink.all()
	require.Len(t, cps, 2)
	assert.Equal(t, int64(3), cps[1].Seq, "Close writes the decision, then checkpoints it")
	require.NoError(t, l.Verify(ctx, WithCheckpoints(pub, cps...)))

	rs := rows(t, db)
	rs[2].Action = "read"
	rewrite(t, db, rs, 2, func(*record) {})
	require.NoError(t, db.Exec("DELETE FROM townhall_audit_checkpoints").Error)
	plain := New(db)
	t.Cleanup(func() { plain.Close() })
	require.NoError(t, plain.Verify(ctx), "the rewritten decision is consistent without key or checkpoint")
	assert.Equal(t, int64(3), tamperSeq(t, plain.Verify(ctx, WithCheckpoints(pub, cps...))),
		"decision events are covered by checkpoints like any other")
}

func TestCheckpoint_EveryNEventsOrInterval(t *testing.T) {
	t.Run("every n events", func(t *testing.T) {
		l, _, sink, _ := newSignedLog(t, WithCheckpointInterval(3, time.Hour))
		recordN(t, l, 3)
		require.Eventually(t, func() bool { return len(sink.all()) == 1 }, 10*time.Second, 5*time.Millisecond)
		assert.Equal(t, int64(3), sink.all()[0].Seq)
	})
	t.Run("every interval, when events were appended", func(t *testing.T) {
		l, _, sink, _ := newSignedLog(t, WithCheckpointInterval(1000, 20*time.Millisecond))
		recordN(t, l, 1)
		require.Eventually(t, func() bool { return len(sink.all()) >= 1 }, 10*time.Second, 5*time.Millisecond)
		// Several more ticks pass with no new events: no new checkpoint.
		time.Sleep(100 * time.Millisecond)
		assert.Len(t, sink.all(), 1)
		assert.Equal(t, int64(1), sink.all()[0].Seq)
	})
}

func TestCheckpoint_ErrorsAreTyped(t *testing.T) {
	ctx := context.Background()
	plain, _ := newTestLog(t)
	_, err := plain.Checkpoint(ctx)
	assert.ErrorIs(t, err, ErrNoSigner)

	sinkErr := errors.New("bucket unreachable")
	l, _, sink, pub := newSignedLog(t)
	sink.err = sinkErr
	recordN(t, l, 1)
	cp, err := l.Checkpoint(ctx)
	assert.ErrorIs(t, err, sinkErr)
	assert.Equal(t, int64(1), cp.Seq, "the checkpoint is stored and returned all the same")
	assert.NoError(t, cp.Verify(pub))

	assert.ErrorIs(t, cp.Verify(pub[:10]), ErrInvalidInput)
	assert.ErrorIs(t, l.Verify(ctx, WithPublicKey(nil)), ErrInvalidInput)
	assert.ErrorIs(t, l.Verify(ctx, WithCheckpoints(pub[:31], cp)), ErrInvalidInput)
	assert.ErrorIs(t, l.Verify(ctx, WithKeys(map[string][]byte{"k": {1}})), ErrInvalidInput)
}

func TestCheckpoint_OfAnEmptyLog(t *testing.T) {
	db := dbtest.New(t)
	migrate(t, db)
	key := signerKey(t, 1)
	l := New(db, WithSigner(key, &memSink{}))
	t.Cleanup(func() { l.Close() })
	ctx := context.Background()
	cp, err := l.Checkpoint(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(0), cp.Seq)
	assert.Empty(t, cp.Hash)
	assert.NoError(t, l.Verify(ctx, WithCheckpoints(key.Public().(ed25519.PublicKey), cp)))
}

func TestCheckpoint_WhileTwoPoolsAppend(t *testing.T) {
	db, dsn := dbtest.NewWithDSN(t)
	other := dbtest.Open(t, dsn)
	migrate(t, db)
	key := signerKey(t, 1)
	pub := key.Public().(ed25519.PublicKey)
	sinks := []*memSink{{}, {}}
	logs := []*Log{
		New(db, WithKey("k1", key1), WithSigner(key, sinks[0]), WithCheckpointInterval(7, time.Hour)),
		New(other, WithKey("k1", key1), WithSigner(key, sinks[1]), WithCheckpointInterval(7, time.Hour)),
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for _, l := range logs {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				errs <- l.Record(ctx, Event{Type: TypeGrant, ActorID: "admin"})
				l.RecordDecision(Decision{At: t0, ActorID: "u1", Module: "occurrences", Action: "read", Reason: "no_grant"})
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				_, err := l.Checkpoint(ctx)
				errs <- err
			}
		}()
	}
	wg.Wait()
	for _, l := range logs {
		require.NoError(t, l.Close())
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	cps := append(sinks[0].all(), sinks[1].all()...)
	require.GreaterOrEqual(t, len(cps), 10)
	var newest int64
	for _, cp := range cps {
		newest = max(newest, cp.Seq)
	}
	assert.Equal(t, int64(80), newest, "Close checkpointed the final head")
	verifier := New(db, WithKey("k1", key1))
	t.Cleanup(func() { verifier.Close() })
	assert.NoError(t, verifier.Verify(ctx, WithCheckpoints(pub, cps...)))
}

// A checkpoint another process stores between this one's reading of the
// head and of the stored checkpoints is newer than the head read, not a
// sign of a rewound head: the checkpoint is taken at the head as it is now.
func TestCheckpoint_AnotherProcessCheckpointsMeanwhile(t *testing.T) {
	db, dsn := dbtest.NewWithDSN(t)
	other := dbtest.Open(t, dsn)
	migrate(t, db)
	key := signerKey(t, 1)
	ctx := context.Background()
	a := New(db, WithKey("k1", key1), WithSigner(key, &memSink{}))
	b := New(other, WithKey("k1", key1), WithSigner(key, &memSink{}))
	t.Cleanup(func() { a.Close(); b.Close() })
	recordN(t, a, 3)
	t.Cleanup(func() { testHookHeadRead = nil })
	testHookHeadRead = func() {
		testHookHeadRead = nil
		recordN(t, b, 2)
		cp, err := b.Checkpoint(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(5), cp.Seq)
	}
	cp, err := a.Checkpoint(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(5), cp.Seq)
	assert.Nil(t, testHookHeadRead, "the hook ran")
}

// A head rewound behind a stored checkpoint is refused, by a process that
// has not checkpointed before as well.
func TestCheckpoint_RefusesAHeadBehindAStoredCheckpoint(t *testing.T) {
	l, db, _, _ := newSignedLog(t)
	ctx := context.Background()
	recordN(t, l, 5)
	_, err := l.Checkpoint(ctx)
	require.NoError(t, err)
	rewindHead(t, db, 3)

	fresh := New(db, WithKey("k1", key1), WithSigner(signerKey(t, 1), &memSink{}))
	t.Cleanup(func() { fresh.Close() })
	_, err = fresh.Checkpoint(ctx)
	assert.Equal(t, int64(3), tamperSeq(t, err))
	assert.Contains(t, err.Error(), "head is behind checkpoint 5")
}
