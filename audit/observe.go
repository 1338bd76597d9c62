package audit

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"

	"github.com/civicstack/townhall/internal/telemetry"
)

// WithLogger sets where the background writer reports what it could not
// do: a failed write (Error) and events dropped because the buffer was
// full (Warn). Default: discard. Records carry counts and errors, never
// event contents.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMeterProvider sets the provider of the log's metrics (default: the
// global provider): townhall.audit.queue.depth and .capacity,
// townhall.audit.dropped and townhall.audit.write.failures.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(o *options) { o.meter = mp } }

// Stats is the state of the asynchronous writer: what a readiness probe
// needs to know of the audit log.
type Stats struct {
	Queued   int // events waiting for the writer (decisions and RecordAsync events)
	Capacity int // room for queued events, per queue
	// Dropped counts events dropped since New: buffer full, invalid, or
	// lost with a failed write. Each drop is also recorded in the chain
	// as a TypeDecisionsDropped event by a later write.
	Dropped int64
	// WriteFailures counts failed background writes; LastWriteError is
	// the error of the latest write, nil once a write succeeded.
	WriteFailures  int64
	LastWriteError error
}

// Stats returns the writer's state.
func (l *Log) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	o := l.obs
	o.mu.Lock()
	last := o.lastErr
	o.mu.Unlock()
	return Stats{
		Queued:   int(l.decisions.len()) + l.queued() + len(l.pending),
		Capacity: cap(l.pending),
		Dropped:  o.dropped.Load(), WriteFailures: o.failures.Load(), LastWriteError: last,
	}
}

// drop counts n dropped events, both for the next TypeDecisionsDropped
// event and in the total since New.
func (l *Log) drop(n int) {
	l.dropped.Add(int64(n))
	l.obs.dropped.Add(int64(n))
}

// observer is a Log's logger and metrics.
type observer struct {
	log          *slog.Logger
	registration metric.Registration
	dropped      atomic.Int64 // since New
	failures     atomic.Int64
	mu           sync.Mutex
	lastErr      error
}

func newObserver(l *Log, log *slog.Logger, mp metric.MeterProvider) *observer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &observer{log: log}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if _, ok := mp.(metricnoop.MeterProvider); ok {
		return o
	}
	m := mp.Meter(telemetry.Scope)
	depth, err1 := m.Int64ObservableGauge("townhall.audit.queue.depth", metric.WithUnit("{event}"),
		metric.WithDescription("Events queued for the audit writer."))
	capacity, err2 := m.Int64ObservableGauge("townhall.audit.queue.capacity", metric.WithUnit("{event}"),
		metric.WithDescription("Room for queued events, per queue."))
	dropped, err3 := m.Int64ObservableCounter("townhall.audit.dropped", metric.WithUnit("{event}"),
		metric.WithDescription("Audit events dropped: queue full, invalid, or lost with a failed write."))
	failures, err4 := m.Int64ObservableCounter("townhall.audit.write.failures", metric.WithUnit("{failure}"),
		metric.WithDescription("Failed background writes of the audit log."))
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			// A meter that refuses an instrument leaves the log
			// unmeasured, never unusable.
			log.Warn("townhall: audit metrics unavailable", slog.Any("error", err))
			return o
		}
	}
	reg, err := m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		st := l.Stats()
		obs.ObserveInt64(depth, int64(st.Queued))
		obs.ObserveInt64(capacity, int64(st.Capacity))
		obs.ObserveInt64(dropped, st.Dropped)
		obs.ObserveInt64(failures, st.WriteFailures)
		return nil
	}, depth, capacity, dropped, failures)
	if err != nil {
		log.Warn("townhall: audit metrics unavailable", slog.Any("error", err))
		return o
	}
	o.registration = reg
	return o
}

// written logs and counts the result of a background write of batch
// events preceded by a record of dropped earlier drops.
func (o *observer) written(dropped int64, batch int, err error) {
	o.mu.Lock()
	o.lastErr = err
	o.mu.Unlock()
	if err != nil {
		o.failures.Add(1)
		o.log.Error("townhall: audit write failed", slog.Int("events", batch), slog.Any("error", err))
		return
	}
	if dropped > 0 {
		o.log.Warn("townhall: audit events dropped", slog.Int64("dropped", dropped))
	}
}

func (o *observer) close() {
	if o.registration != nil {
		_ = o.registration.Unregister() // only fails for a callback already gone
	}
}
