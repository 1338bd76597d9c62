package townhall_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
)

// checkpointFile collects checkpoints as a host's external store would.
type checkpointFile struct {
	mu  sync.Mutex
	cps []audit.Checkpoint
}

func (f *checkpointFile) Put(_ context.Context, c audit.Checkpoint) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cps = append(f.cps, c)
	return nil
}

func TestOpen_AuditKeyAndSignerProtectTheLog(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	key := bytes.Repeat([]byte{9}, 32)
	sink := &checkpointFile{}

	// A platform that ran without a key first: its chain is unkeyed.
	plain, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF))
	require.NoError(t, err)
	require.NoError(t, plain.Close())

	p, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF),
		townhall.WithAuditKey("2026-12", key), townhall.WithAuditSigner(priv, sink))
	require.NoError(t, err)
	_, err = p.Locations.Create(ctx, location.Location{ID: "M1", Level: "municipality"})
	require.NoError(t, err)
	require.NoError(t, p.Audit.Verify(ctx), "the unkeyed prefix, then the key's mark and keyed events")
	keyEvents, err := p.Audit.Query(ctx, audit.Query{Type: audit.TypeAuditKey})
	require.NoError(t, err)
	assert.Len(t, keyEvents, 1)
	require.NoError(t, p.Close())

	require.NotEmpty(t, sink.cps, "Close checkpointed the head")
	cps := sink.cps
	last := cps[len(cps)-1]
	assert.Equal(t, "2026-12", last.KeyID)

	again, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), townhall.WithAuditKey("2026-12", key))
	require.NoError(t, err)
	defer again.Close()
	events, err := again.Audit.Query(ctx, audit.Query{AfterSeq: last.Seq - 1})
	require.NoError(t, err)
	require.Len(t, events, 1, "the checkpoint names the newest event, and reopening with the key added none")
	assert.NoError(t, again.Audit.Verify(ctx, audit.WithCheckpoints(pub, cps...)))
	require.NoError(t, db.Exec("DELETE FROM townhall_audit_events WHERE seq = ?", last.Seq).Error)
	require.NoError(t, db.Exec("UPDATE townhall_audit_head SET last_seq = last_seq - 1, last_hash = (SELECT hash FROM townhall_audit_events WHERE seq = ?) WHERE id = 1", last.Seq-1).Error)
	assert.ErrorIs(t, again.Audit.Verify(ctx, audit.WithCheckpoints(pub, cps...)), audit.ErrTampered)
}

func TestOpen_RejectsInvalidAuditEvidenceOptions(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	for name, opt := range map[string]townhall.Option{
		"short key":      townhall.WithAuditKey("k", []byte("short")),
		"empty key id":   townhall.WithAuditKey("", bytes.Repeat([]byte{1}, 32)),
		"bad signer key": townhall.WithAuditSigner(ed25519.PrivateKey{1, 2, 3}, &checkpointFile{}),
		"nil sink":       townhall.WithAuditSigner(ed25519.NewKeyFromSeed(make([]byte, 32)), nil),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := townhall.Open(ctx, db, townhall.WithKDF(testkit.FastKDF), opt)
			assert.ErrorIs(t, err, townhall.ErrInvalidInput)
			assert.ErrorIs(t, err, audit.ErrInvalidInput)
		})
	}
}
