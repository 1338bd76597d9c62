package townhall

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/civicstack/townhall/audit"
)

// WithAuditKey links the audit chain under an HMAC-SHA256 key the host keeps
// outside the database (environment, secret store), so whoever can write
// the database but lacks the key cannot rewrite the log undetected. keyID
// (1 to 64 bytes) is recorded with every event. To rotate, give the old
// keys first and the new one last: new events use the last, the others
// keep verifying events linked under them. A key shorter than
// audit.MinKeyLen bytes (use 32 random bytes) or an empty keyID makes Open
// fail with ErrInvalidInput. Open records an audit.TypeAuditKey event when
// the newest event is not linked under the key yet.
func WithAuditKey(keyID string, key []byte) Option {
	return func(c *config) {
		c.auditExtra = append(c.auditExtra, audit.WithKey(keyID, key))
		c.auditKeyed = true
	}
}

// WithAuditSigner has the audit log sign checkpoints of its head with key
// (Ed25519) and hand each to sink, which should keep them where whoever can
// write the database cannot: at Close, on Platform.Audit.Checkpoint, and
// about every audit.DefaultCheckpointEvents events or
// audit.DefaultCheckpointInterval (see WithAuditCheckpoints). Verify with
// the public key and the sink's checkpoints detects removed or changed
// events at or before them, including a cut tail with a rewound head. A key
// that is not an Ed25519 private key or a nil sink makes Open fail with
// ErrInvalidInput.
func WithAuditSigner(key ed25519.PrivateKey, sink audit.CheckpointSink) Option {
	return func(c *config) { c.auditExtra = append(c.auditExtra, audit.WithSigner(key, sink)) }
}

// WithAuditCheckpoints sets how often a signed log checkpoints on its own:
// after about events events appended by this process, and every interval
// when any were (see audit.WithCheckpointInterval).
func WithAuditCheckpoints(events int, every time.Duration) Option {
	return func(c *config) {
		c.auditExtra = append(c.auditExtra, audit.WithCheckpointInterval(events, every))
	}
}

// openAuditEvidence checks the audit key and signer options and, with a
// key, marks the key in the chain.
func openAuditEvidence(ctx context.Context, l *audit.Log, keyed bool) error {
	if err := l.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	if !keyed {
		return nil
	}
	if err := l.RecordKey(ctx); err != nil {
		return fmt.Errorf("townhall: %w", err)
	}
	return nil
}
