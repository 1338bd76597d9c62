package main_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/location"
)

// discardSink keeps no checkpoint: the database's copy is enough here.
type discardSink struct{}

func (discardSink) Put(context.Context, audit.Checkpoint) error { return nil }

func TestCLI_AuditVerifyArchiveOffline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	db, err := townhall.OpenSQLite(filepath.Join(dir, "signed.db"))
	require.NoError(t, err)
	p, err := townhall.Open(ctx, db, townhall.WithAuditSigner(priv, discardSink{}))
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Locations.Create(ctx, location.Location{ID: "north", Level: "region"})
	require.NoError(t, err)
	_, err = p.Audit.Checkpoint(ctx)
	require.NoError(t, err)
	var archive bytes.Buffer
	_, err = p.Audit.Archive(ctx, &archive, 1, 0)
	require.NoError(t, err)

	good := filepath.Join(dir, "audit.jsonl")
	require.NoError(t, os.WriteFile(good, archive.Bytes(), 0o600))
	hexKey := filepath.Join(dir, "pub.hex")
	require.NoError(t, os.WriteFile(hexKey, []byte(hex.EncodeToString(pub)+"\n"), 0o600))
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	pemKey := filepath.Join(dir, "pub.pem")
	require.NoError(t, os.WriteFile(pemKey, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))

	c := newCLI(t) // the archive is checked offline: --db is never opened
	assert.Contains(t, c.ok("audit", "verify", "--archive", good, "--pubkey", hexKey), "yes")
	assert.Contains(t, c.ok("audit", "verify", "--archive", good, "--pubkey", pemKey), "yes")

	other, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	otherKey := filepath.Join(dir, "other.hex")
	require.NoError(t, os.WriteFile(otherKey, []byte(hex.EncodeToString(other)), 0o600))
	r := c.run("", "audit", "verify", "--archive", good, "--pubkey", otherKey)
	assert.Equal(t, 5, r.code, "another key's signature: %s", r.stderr)

	tampered := filepath.Join(dir, "tampered.jsonl")
	edited := strings.Replace(archive.String(), `"north"`, `"south"`, 1)
	require.NotEqual(t, archive.String(), edited, "the archive names the location")
	require.NoError(t, os.WriteFile(tampered, []byte(edited), 0o600))
	r = c.run("", "audit", "verify", "--archive", tampered, "--pubkey", hexKey)
	assert.Equal(t, 5, r.code, "an edited event: %s", r.stderr)
	assert.Contains(t, r.stdout, "no")

	r = c.run("", "audit", "verify", "--archive", good)
	assert.Equal(t, 2, r.code, "--archive without --pubkey is a usage error")
}
