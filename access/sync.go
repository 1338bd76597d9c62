package access

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/internal/telemetry"
)

// Every write townhall makes commits audit events in the same transaction,
// numbered in commit order under the chain's head lock. The audit log is
// therefore the change log: the revision of the database is the Seq of its
// last event, and a checker in another process catches up by applying the
// change events after its own revision, entity by entity.

// changePage is how many change events Sync reads at a time; reloadAfter
// is how many it applies one by one before it gives up and reloads the
// whole snapshot once (a replica that fell far behind).
const (
	changePage  = 1000
	reloadAfter = 20000
)

// DefaultSyncInterval is how often a checker polls the revision when
// nothing wakes it earlier.
const DefaultSyncInterval = 250 * time.Millisecond

// syncState is the Checker's catch-up machinery.
type syncState struct {
	rev  atomic.Int64 // every change event with Seq <= rev is applied
	mu   sync.Mutex   // one Sync at a time
	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Revision returns the database revision the snapshot reflects: every
// change committed up to it (by any process) is applied. Writes made
// through this process are applied as soon as they return, possibly before
// Revision moves past them.
func (c *Checker) Revision() int64 { return c.rep.rev.Load() }

// Sync brings the snapshot up to the database's latest revision, applying
// what other processes committed since the last sync (read-your-writes
// across replicas on demand). It returns when the snapshot reflects every
// change committed before the call.
func (c *Checker) Sync(ctx context.Context) error { return c.sync(ctx, false) }

// sync is Sync. The background loop's syncs are traced only when they find
// something to apply or fail, and their failures are logged: a poll every
// 250 ms that finds nothing is not worth a span.
func (c *Checker) sync(ctx context.Context, background bool) (err error) {
	c.rep.mu.Lock()
	defer c.rep.mu.Unlock()
	start := time.Now()
	head := int64(-1)
	var span trace.Span
	if !background {
		ctx, span = c.obs.set.Tracer.Start(ctx, "townhall.Checker.Sync")
	}
	from := c.rep.rev.Load()
	defer func() {
		c.obs.synced(head, err, background)
		if span == nil && err != nil {
			_, span = c.obs.set.Tracer.Start(ctx, "townhall.Checker.Sync", trace.WithTimestamp(start))
		}
		if span != nil {
			span.SetAttributes(attribute.Int64("townhall.revision.from", from), attribute.Int64("townhall.revision.to", c.rep.rev.Load()))
			telemetry.End(span, err)
		}
	}()
	if head, err = c.audit.Head(ctx); err != nil {
		return err
	}
	if background && from < head {
		ctx, span = c.obs.set.Tracer.Start(ctx, "townhall.Checker.Sync", trace.WithTimestamp(start))
	}
	applied := 0
	for from < head {
		events, err := c.audit.Changes(ctx, from, head, changePage)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			break
		}
		if applied += len(events); applied > reloadAfter {
			if err := c.reload(ctx); err != nil {
				return err
			}
			break
		}
		if err := c.Apply(ctx, events...); err != nil {
			return fmt.Errorf("sync events %d-%d: %w", events[0].Seq, events[len(events)-1].Seq, err)
		}
		from = events[len(events)-1].Seq
	}
	c.rep.rev.Store(head)
	return nil
}

// reload replaces the whole snapshot with a fresh load.
func (c *Checker) reload(ctx context.Context) error {
	start := time.Now()
	if err := c.refresh(ctx, snapshot.Parts{Reload: true}); err != nil {
		return err
	}
	c.obs.loaded(ctx, start)
	return nil
}

// Apply brings the snapshot in step with committed change events, all in
// one new snapshot: the one mapping from what was committed to what checks
// see. Sync applies what other processes committed; Admin applies what it
// has just committed. Every part an event names is read again from the
// database, so applying an event twice, or one this process already
// applied, changes nothing. Events that change nothing a decision reads
// are ignored.
func (c *Checker) Apply(ctx context.Context, events ...audit.Event) error {
	var p snapshot.Parts
	for _, ev := range events {
		p.AddEvent(ev)
	}
	if p.Empty() {
		return nil
	}
	return c.refresh(ctx, p)
}

// startSync runs the polling loop: every interval, and whenever Wake is
// called, it syncs.
func (c *Checker) startSync(interval time.Duration) {
	s := &c.rep
	s.wake = make(chan struct{}, 1)
	s.stop = make(chan struct{})
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			case <-s.wake:
			}
			// A failed sync (database briefly unreachable) is logged and
			// retried on the next tick: the revision only advances on
			// success.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = c.sync(ctx, true) // sync logs, counts and keeps the error for Health
			cancel()
		}
	}()
}

// Wake asks the background loop to sync now (without waiting for it). The
// PostgreSQL listener calls it on every notification.
func (c *Checker) Wake() {
	if c.rep.wake == nil {
		return
	}
	select {
	case c.rep.wake <- struct{}{}:
	default: // a sync is already pending
	}
}

// stopSync stops the background loop; idempotent.
func (c *Checker) stopSync() {
	s := &c.rep
	s.once.Do(func() {
		if s.stop != nil {
			close(s.stop)
			<-s.done
		}
	})
}
