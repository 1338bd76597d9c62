package audit

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/civicstack/townhall/internal/actor"
	"github.com/civicstack/townhall/internal/dbx"
)

// RecordAsync enqueues e for the background writer and returns at once: it
// never waits on the database or on a full buffer. It returns false when e
// was not enqueued: the log is closed, e is invalid, or the buffer is full
// (the event is then dropped and counted; the count is recorded as a
// TypeDecisionsDropped event by the next write). A zero At is set from the
// log's clock now; ActorID is kept as given (empty means anonymous). Details
// are encoded before RecordAsync returns, so the caller may reuse the map.
func (l *Log) RecordAsync(e Event) bool {
	if l == nil {
		return false
	}
	if e.At.IsZero() {
		e.At = l.now()
	}
	e.At = canonicalTime(e.At)
	if validate(&e) != nil {
		return false
	}
	details, err := encodeDetails(e.Details)
	if err != nil {
		return false
	}
	e.Details = nil
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return false
	}
	select {
	case l.pending <- pending{ev: e, details: details}:
		return true
	default:
		l.drop(1)
		return false
	}
}

// Dropped reports how many asynchronous events were dropped since New and
// not yet recorded as a TypeDecisionsDropped event.
func (l *Log) Dropped() int64 {
	if l == nil {
		return 0
	}
	return l.dropped.Load()
}

// Flush waits until every event enqueued by RecordAsync before the call is
// written, and returns the first error the background writer met since the
// previous Flush (events it could not write are counted as dropped). After
// Close, Flush returns nil: Close has flushed.
func (l *Log) Flush(ctx context.Context) error {
	if err := l.sync(ctx); err != nil {
		return err
	}
	return l.takeErr()
}

// takeErr returns and clears the writer's first unreported error.
func (l *Log) takeErr() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	err := l.asyncErr
	l.asyncErr = nil
	return err
}

// sync waits until the writer has written everything enqueued before it.
func (l *Log) sync(ctx context.Context) error {
	if l == nil || l.db == nil {
		return errNilDB
	}
	if ctx == nil {
		ctx = context.Background()
	}
	reply := make(chan error, 1)
	select {
	case l.flushes <- reply:
	case <-l.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: flush: %w", ctx.Err())
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: flush: %w", ctx.Err())
	}
}

// Close flushes the buffer, stops the background writer and waits for it,
// then, with a signer, checkpoints the head if this log appended events
// since its last checkpoint.
// Afterwards Record, RecordTx and RecordAsync refuse events; Query and
// Verify keep working. Close is idempotent and returns the first error the
// writer met that Flush did not report.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.closedFlag.Store(true)
		l.mu.Unlock()
		close(l.stop)
		l.obs.close()
	})
	<-l.done
	l.closeCheckpoints()
	return l.takeErr()
}

// run is the background writer.
func (l *Log) run() {
	defer close(l.done)
	batch := make([]pending, 0, maxBatch)
	tick := time.NewTicker(l.drainEvery)
	defer tick.Stop()
	for {
		select {
		case p := <-l.pending:
			batch = append(batch[:0], p)
			batch = l.fill(batch)
			l.write(batch)
		case <-tick.C:
			l.drainDecisions(batch)
		case <-l.poke:
			l.drainDecisions(batch)
		case reply := <-l.flushes:
			l.drain(batch)
			reply <- nil
		case <-l.stop:
			l.drain(batch)
			return
		}
	}
}

// fill adds to batch what is buffered, without waiting, up to maxBatch.
func (l *Log) fill(batch []pending) []pending {
	for len(batch) < maxBatch {
		select {
		case p := <-l.pending:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}

// drainDecisions writes what RecordDecision queued.
func (l *Log) drainDecisions(batch []pending) {
	for {
		batch = l.takeDecisions(batch[:0])
		if len(batch) == 0 {
			return
		}
		l.write(batch)
	}
}

// drain writes everything buffered, and the drop count even when nothing is.
func (l *Log) drain(batch []pending) {
	l.drainDecisions(batch)
	for {
		batch = l.fill(batch[:0])
		if len(batch) == 0 && l.dropped.Load() == 0 {
			return
		}
		l.write(batch)
		if len(batch) < maxBatch {
			return
		}
	}
}

// write appends batch, preceded by a TypeDecisionsDropped event when events
// were dropped, in one transaction. On failure the batch is counted as
// dropped and the error kept for Flush.
func (l *Log) write(batch []pending) {
	n := l.dropped.Swap(0)
	rs := make([]*record, 0, len(batch)+1)
	if n > 0 {
		rs = append(rs, &record{
			At:      canonicalTime(l.now()),
			Type:    TypeDecisionsDropped,
			ActorID: actor.SystemID,
			Details: fmt.Sprintf(`{"dropped":%d}`, n),
		})
	}
	for i := range batch {
		rs = append(rs, toRecord(&batch[i].ev, batch[i].details))
	}
	if len(rs) == 0 {
		return
	}
	var err error
	if l.db == nil {
		err = errNilDB
	} else {
		err = dbx.Tx(context.Background(), l.db, func(tx *gorm.DB) error {
			return l.appendRecords(tx, rs)
		})
	}
	l.obs.written(n, len(batch), err)
	if err == nil {
		l.cp.appended(len(rs))
	} else {
		l.dropped.Add(n) // counted when they were dropped
		l.drop(len(batch))
		l.errMu.Lock()
		if l.asyncErr == nil {
			l.asyncErr = fmt.Errorf("audit: async write: %w", err)
		}
		l.errMu.Unlock()
	}
}
