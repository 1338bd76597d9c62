package access

import (
	"context"
	"fmt"
	"time"
)

// SyncStatus is how far a Checker is in step with the database, what a
// readiness probe needs to know of it.
type SyncStatus struct {
	Revision int64 // every change up to this revision is in the snapshot
	Head     int64 // the database's revision (read by Health; else the last one a sync read)
	Behind   int64 // Head - Revision, never negative
	// LastSync is when the last successful sync (or the initial load)
	// finished, by the checker's clock.
	LastSync time.Time
	// LastError is the error of the latest sync, nil when it succeeded;
	// LastErrorAt is when it happened. Failures counts failed syncs.
	LastError   error
	LastErrorAt time.Time
	Failures    int64
	// Listener is the PostgreSQL LISTEN session's state; nil when the
	// checker does not listen (polling, or another database).
	Listener *ListenerStatus
}

// ListenerStatus is the state of the PostgreSQL LISTEN session that wakes
// the checker when another process commits a change.
type ListenerStatus struct {
	Connected  bool  // the session is up
	Reconnects int   // sessions established after the first
	LastError  error // why the last session ended or could not start, kept after a reconnection
}

// Health returns the checker's SyncStatus with Head and Behind read from
// the database now. The error is that of reading the head (the database is
// unreachable); the status is filled in as far as it is known either way.
func (c *Checker) Health(ctx context.Context) (SyncStatus, error) {
	st := c.syncStatus()
	head, err := c.audit.Head(ctx)
	if err != nil {
		return st, fmt.Errorf("read revision: %w", err)
	}
	c.obs.head.Store(head)
	st.Head, st.Behind = head, max(head-st.Revision, 0)
	return st, nil
}

// syncStatus is the status as last observed, without touching the
// database.
func (c *Checker) syncStatus() SyncStatus {
	o := c.obs
	st := SyncStatus{Revision: c.Revision(), Head: o.head.Load(), Failures: o.syncFailures.Load()}
	st.Behind = max(st.Head-st.Revision, 0)
	if ns := o.lastSync.Load(); ns != 0 {
		st.LastSync = time.Unix(0, ns).UTC()
	}
	o.errMu.Lock()
	st.LastError, st.LastErrorAt = o.lastErr, o.lastErrAt
	o.errMu.Unlock()
	if c.listener != nil {
		ls := c.listener.Status()
		st.Listener = &ListenerStatus{Connected: ls.Connected, Reconnects: max(ls.Sessions-1, 0), LastError: ls.LastError}
	}
	return st
}
