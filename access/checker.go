package access

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"

	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/notify"
	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/internal/telemetry"
)

// Checker answers access questions from an in-memory snapshot of users,
// profiles, grants, departments, module settings, the location tree,
// affiliations and impersonation sessions. Checks never touch the database
// and never wait for a writer: they read an immutable snapshot that writers
// replace copy-on-write. Every write made through townhall updates the
// snapshot before the write call returns. A Checker is safe for concurrent
// use.
type Checker struct {
	id           uint32 // names the handles this checker issues
	db           *gorm.DB
	audit        *audit.Log
	now          func() time.Time
	auditAllowed bool
	// stamp is the clock of decision events: now, or when the host kept
	// the default clock, the coarse clock.
	stamp  func() time.Time
	coarse *coarseClock

	snap      atomic.Pointer[snapshot.Snapshot]
	publishMu sync.Mutex // one writer at a time builds the next snapshot

	lookup atomic.Pointer[grantIndex] // Subjects' index of the current snapshot (lookup.go)

	rep      syncState        // catching up with other processes (sync.go)
	listener *notify.Listener // PostgreSQL LISTEN, when enabled
	obs      *observer        // logs, traces, metrics (telemetry.go)

	gates atomic.Pointer[gateCache] // CheckModule's per-snapshot lookups (gate.go)

	codes  *audit.DecisionQueue                          // decision events as codes (auditcode.go)
	epochs [epochSlots]atomic.Pointer[snapshot.Snapshot] // the latest snapshot of recent epochs, for decoding codes
}

// CheckerConfig configures NewChecker.
type CheckerConfig struct {
	Registry *Registry  // default DefaultRegistry()
	Audit    *audit.Log // required: denied decisions are recorded here
	// Clock is the time of sessions, link windows and decision events
	// (default time.Now; decision events then carry a clock read every
	// millisecond, so that checks do not read the time themselves).
	Clock func() time.Time
	// AuditAllowed also records allowed decisions (off by default: they are
	// the bulk of traffic).
	AuditAllowed bool
	// SyncInterval is how often the checker polls the database revision for
	// changes made by other processes (default DefaultSyncInterval; negative
	// disables the background loop: call Sync yourself).
	SyncInterval time.Duration
	// NotifyChannel, on PostgreSQL, is the LISTEN channel that wakes the
	// checker as soon as another process commits a change (see
	// internal/notify; townhall.Open sets it unless polling is chosen).
	NotifyChannel string
	// Logger, TracerProvider and MeterProvider receive the checker's (and
	// its Admin's) logs, spans and metrics. Defaults: discard, and the
	// global OpenTelemetry providers.
	Logger         *slog.Logger
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// CheckSpans makes every Check a span (off by default: checks are the
	// bulk of traffic).
	CheckSpans bool
}

// NewChecker compiles the registry, writes its policy rows when they differ
// from the stored ones, and loads the snapshot from db. townhall.Open calls
// it; the tables must be migrated.
func NewChecker(ctx context.Context, db *gorm.DB, cfg CheckerConfig) (*Checker, error) {
	if db == nil || cfg.Audit == nil {
		return nil, fmt.Errorf("%w: nil database or audit log", ErrInvalidInput)
	}
	if cfg.Registry == nil {
		cfg.Registry = DefaultRegistry()
	}
	defaultClock := cfg.Clock == nil
	if defaultClock {
		cfg.Clock = time.Now
	}
	reg, err := cfg.Registry.compile()
	if err != nil {
		return nil, err
	}
	obs, err := newObserver(telemetry.New(cfg.Logger, cfg.TracerProvider, cfg.MeterProvider), cfg.CheckSpans, cfg.Clock)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	c := &Checker{id: checkerIDs.Add(1), db: db, audit: cfg.Audit, now: cfg.Clock, stamp: cfg.Clock, auditAllowed: cfg.AuditAllowed, obs: obs}
	if err := syncPolicy(ctx, db, cfg.Audit, reg, obs.set.Logger); err != nil {
		return nil, err
	}
	// The revision is read before the rows: changes committed in between
	// are applied again by the first sync, which is harmless.
	rev, err := cfg.Audit.Head(ctx)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	snap, err := snapshot.LoadSnapshot(ctx, db, reg, nil)
	if err != nil {
		return nil, err
	}
	obs.loaded(ctx, start)
	c.codes = cfg.Audit.NewDecisionQueue(c.decodeDecision)
	c.storeSnapshot(snap)
	c.rep.rev.Store(rev)
	obs.synced(rev, nil, false)
	if defaultClock {
		c.coarse = startCoarseClock()
		c.stamp = c.coarse.now
	}
	if cfg.SyncInterval >= 0 {
		if cfg.SyncInterval == 0 {
			cfg.SyncInterval = DefaultSyncInterval
		}
		c.startSync(cfg.SyncInterval)
	}
	if cfg.NotifyChannel != "" {
		if c.listener, err = notify.Listen(db, cfg.NotifyChannel, c.Wake, obs.set.Logger); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := obs.observe(c); err != nil {
		c.Close()
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return c, nil
}

// Close stops the checker's background work (polling, listening). It is
// idempotent.
func (c *Checker) Close() error {
	if c.listener != nil {
		c.listener.Close()
	}
	c.stopSync()
	if c.coarse != nil {
		c.coarse.close()
	}
	c.obs.close()
	return nil
}

// snapshot returns the current snapshot. It is immutable: read it freely.
func (c *Checker) snapshot() *snapshot.Snapshot { return c.snap.Load() }

// publish builds the next snapshot with edit, which receives a shallow
// copy of the current one and must replace (never mutate) what it changes,
// and makes it current. Writers are serialised; readers are not blocked.
func (c *Checker) publish(edit func(next *snapshot.Snapshot) error) error {
	c.publishMu.Lock()
	defer c.publishMu.Unlock()
	next := *c.snap.Load()
	if err := edit(&next); err != nil {
		return err
	}
	c.storeSnapshot(&next)
	return nil
}
