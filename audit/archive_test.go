package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// archiveOf writes the archive of from..to and returns it with its
// checkpoint.
func archiveOf(t testing.TB, l *Log, from, to int64) ([]byte, Checkpoint) {
	t.Helper()
	var buf bytes.Buffer
	cp, err := l.Archive(context.Background(), &buf, from, to)
	require.NoError(t, err)
	return buf.Bytes(), cp
}

func TestArchive_PrunedThenVerified(t *testing.T) {
	l, db, _, pub := newSignedLog(t)
	ctx := context.Background()
	keys := WithKeys(map[string][]byte{"k1": key1})
	recordN(t, l, 4)
	l.RecordDecision(Decision{At: t0, ActorID: "u9", Module: "occurrences", Action: "delete", Reason: "no_grant"})
	cp5, err := l.Checkpoint(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(5), cp5.Seq)
	recordN(t, l, 3)
	cp8, err := l.Checkpoint(ctx)
	require.NoError(t, err)

	first, got := archiveOf(t, l, 1, 4)
	assert.Equal(t, cp5, got, "rounded up to the checkpoint at 5")
	assert.Equal(t, 7, bytes.Count(first, []byte("\n")), "header, five events, checkpoint")
	assert.Contains(t, string(first), `"type":"decision_denied"`, "the asynchronous decision is in the same chain")
	verified, err := VerifyArchive(bytes.NewReader(first), pub, keys)
	require.NoError(t, err)
	assert.Equal(t, cp5, verified)

	require.NoError(t, l.Prune(ctx, cp5.Seq))
	require.NoError(t, l.Prune(ctx, 3), "pruning what is gone does nothing")
	assert.Equal(t, []int64{6, 7, 8}, seqs(all(t, l)))
	require.NoError(t, l.Verify(ctx), "what remains starts from the anchor")
	require.NoError(t, l.Verify(ctx, WithCheckpoints(pub, cp5, cp8)))
	plain := New(db)
	t.Cleanup(func() { plain.Close() })
	require.NoError(t, plain.Verify(ctx))

	second, got := archiveOf(t, l, 6, 0)
	assert.Equal(t, cp8, got, "to 0 is the newest checkpoint")
	verified, err = VerifyArchive(bytes.NewReader(second), pub)
	require.NoError(t, err, "offline, with the public key alone")
	assert.Equal(t, cp8, verified)
	assert.Contains(t, string(second), `"prev_hash":"`+cp5.hashHex()+`"`, "the second archive continues from the first's checkpoint")

	_, err = l.Archive(ctx, &bytes.Buffer{}, 2, 0)
	assert.ErrorIs(t, err, ErrInvalidInput, "pruned events cannot be archived")

	// Pruning further without a checkpoint, by hand: the anchor is not signed.
	seven := rows(t, db)[1]
	require.NoError(t, db.Exec("DELETE FROM townhall_audit_events WHERE seq <= 7").Error)
	require.NoError(t, db.Exec("UPDATE townhall_audit_head SET anchor_seq = ?, anchor_hash = ?, anchor_mac = ? WHERE id = 1", seven.Seq, seven.Hash, seven.MAC).Error)
	require.NoError(t, plain.Verify(ctx), "without a public key a moved anchor looks like a prune")
	assert.Equal(t, int64(7), tamperSeq(t, l.Verify(ctx)))
}

func TestVerifyArchive_DetectsTampering(t *testing.T) {
	l, _, _, pub := newSignedLog(t)
	ctx := context.Background()
	recordN(t, l, 4)
	_, err := l.Checkpoint(ctx)
	require.NoError(t, err)
	archive, _ := archiveOf(t, l, 1, 0)
	lines := strings.SplitAfter(string(archive), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	require.Len(t, lines, 6)
	join := func(ls ...string) string { return strings.Join(ls, "") }
	without := func(i int) string {
		return join(append(append([]string(nil), lines[:i]...), lines[i+1:]...)...)
	}
	tests := []struct {
		name    string
		archive string
		pub     ed25519.PublicKey
		opts    []VerifyOption
		want    error
	}{
		{"edited event", strings.Replace(archive2(lines), `"u1"`, `"u7"`, 1), pub, nil, ErrTampered},
		{"removed middle event", without(2), pub, nil, ErrTampered},
		{"removed last event", without(4), pub, nil, ErrTampered},
		{"reordered events", join(lines[0], lines[2], lines[1], lines[3], lines[4], lines[5]), pub, nil, ErrTampered},
		{"no checkpoint", join(lines[:5]...), pub, nil, ErrInvalidInput},
		{"no header", join(lines[1:]...), pub, nil, ErrInvalidInput},
		{"lines after the checkpoint", join(append(lines, lines[1])...), pub, nil, ErrInvalidInput},
		{"not json", join(lines[0], "{\"event\":\n"), pub, nil, ErrInvalidInput},
		{"another key", archive2(lines), signerKey(t, 2).Public().(ed25519.PublicKey), nil, ErrInvalidCheckpoint},
		{"mac under another key", archive2(lines), pub, []VerifyOption{WithKeys(map[string][]byte{"k1": key2})}, ErrTampered},
		{"short public key", archive2(lines), pub[:5], nil, ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyArchive(strings.NewReader(tt.archive), tt.pub, tt.opts...)
			assert.ErrorIs(t, err, tt.want)
		})
	}
	_, err = VerifyArchive(strings.NewReader(archive2(lines)), pub, WithKeys(map[string][]byte{"k1": key1}))
	assert.NoError(t, err, "the untouched archive")
}

func archive2(lines []string) string { return strings.Join(lines, "") }

func TestArchiveAndPrune_RejectBadRanges(t *testing.T) {
	l, _, _, _ := newSignedLog(t)
	ctx := context.Background()
	recordN(t, l, 3)
	var buf bytes.Buffer
	for _, r := range [][2]int64{{0, 3}, {3, 2}, {1, -1}} {
		_, err := l.Archive(ctx, &buf, r[0], r[1])
		assert.ErrorIs(t, err, ErrInvalidInput, "range %v", r)
	}
	_, err := l.Archive(ctx, &buf, 1, 3)
	assert.ErrorIs(t, err, ErrInvalidInput, "no checkpoint yet")
	assert.ErrorIs(t, l.Prune(ctx, 2), ErrInvalidInput, "no checkpoint at 2")
	assert.ErrorIs(t, l.Prune(ctx, 0), ErrInvalidInput)
	assert.Empty(t, buf.Bytes(), "nothing written")
	assert.Len(t, all(t, l), 3, "nothing pruned")
}
