package townhall

import (
	"context"

	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
)

// Health is what a readiness probe needs to know of a platform.
type Health struct {
	// Sync is how far the snapshot is in step with the database, and the
	// state of the PostgreSQL listener (Sync.Listener, nil when polling).
	Sync access.SyncStatus
	// Audit is the state of the asynchronous audit writer.
	Audit audit.Stats
	// Ready is true when the database answered, the latest sync
	// succeeded, the listener (if any) is connected and the latest audit
	// write succeeded. Behind is left to the host to judge: a replica
	// catching up is not unready.
	Ready bool
}

// Health reads the database's revision and reports the platform's state.
// The error is that of reading the revision; the report is filled in as
// far as it is known either way, with Ready false.
func (p *Platform) Health(ctx context.Context) (Health, error) {
	st, err := p.Checker.Health(ctx)
	h := Health{Sync: st, Audit: p.Audit.Stats()}
	h.Ready = err == nil && st.LastError == nil && (st.Listener == nil || st.Listener.Connected) &&
		h.Audit.LastWriteError == nil
	return h, err
}
