package access

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/civicstack/townhall/internal/snapshot"
	"github.com/civicstack/townhall/internal/telemetry"
)

// Attribute keys of townhall's metrics and spans.
const (
	AttrOutcome    = attribute.Key("townhall.outcome")     // checks: allowed, denied, error; changes: applied, refused, failed
	AttrReason     = attribute.Key("townhall.reason")      // a check's Reason, or a refusal's reason
	AttrChangeType = attribute.Key("townhall.change.type") // an audit event type: grant_added, user_active, ...
	AttrModule     = attribute.Key("townhall.module")
	AttrAction     = attribute.Key("townhall.action")
	AttrEntity     = attribute.Key("townhall.snapshot.entity") // users, grants, locations
)

// Outcomes of checks and of Admin changes.
const (
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
	OutcomeError   = "error"
	OutcomeApplied = "applied"
	OutcomeRefused = "refused"
	OutcomeFailed  = "failed"
)

// checkSampleMask selects the checks whose latency is measured: about one
// in 64 (see beginCheck).
const checkSampleMask = 63

const (
	outcomeAllowed = iota
	outcomeDenied
	outcomeError
	numOutcomes
)

var outcomeNames = [numOutcomes]string{OutcomeAllowed, OutcomeDenied, OutcomeError}

// checkReasons are the reasons a decision can carry, in counter order; an
// unknown one (none today) is counted under the last slot.
var checkReasons = [...]Reason{
	ReasonSuperAdmin, ReasonPublic, ReasonAuthenticated, ReasonPlatformRole, ReasonRole,
	ReasonModuleDisabled, ReasonUserInactive, ReasonNotAffiliated, ReasonCategory, ReasonOutOfScope,
	ReasonProfileNotApproved, ReasonProfileInactive, ReasonNoGrant, ReasonInvalid,
}

const numReasons = len(checkReasons)

func reasonIndex(r Reason) int {
	switch r {
	case ReasonSuperAdmin:
		return 0
	case ReasonPublic:
		return 1
	case ReasonAuthenticated:
		return 2
	case ReasonPlatformRole:
		return 3
	case ReasonRole:
		return 4
	case ReasonModuleDisabled:
		return 5
	case ReasonUserInactive:
		return 6
	case ReasonNotAffiliated:
		return 7
	case ReasonCategory:
		return 8
	case ReasonOutOfScope:
		return 9
	case ReasonProfileNotApproved:
		return 10
	case ReasonProfileInactive:
		return 11
	case ReasonNoGrant:
		return 12
	}
	return numReasons - 1
}

// observer is a Checker's logs, traces and metrics. Checks only add to
// atomic counters (read by the meter's callback at collection) and time
// one check in 64; everything else is on paths that touch the database.
type observer struct {
	set        telemetry.Set
	checkSpans bool
	now        func() time.Time

	checks        [numOutcomes][numReasons]atomic.Int64
	timeNext      atomic.Bool // the next check is timed
	epoch         time.Time   // origin of checkProbe.start (monotonic)
	checkAttrs    [numOutcomes][numReasons]metric.ObserveOption
	checkDuration metric.Float64Histogram
	durationOpts  [numOutcomes][]metric.RecordOption

	changes      metric.Int64Counter
	snapshotLoad metric.Float64Histogram
	registration metric.Registration

	// Catching up with other processes: the last head read, the last
	// successful sync (unix nanoseconds by the checker's clock), failures.
	head         atomic.Int64
	lastSync     atomic.Int64
	syncFailures atomic.Int64
	errMu        sync.Mutex
	lastErr      error
	lastErrAt    time.Time

	// size caches the snapshot's counts for the snapshot they were taken
	// of: counting users and grants walks the whole user table.
	sizeMu   sync.Mutex
	sizeOf   *snapshot.Snapshot
	sizeUser int64
	sizeGr   int64
}

// newObserver creates the instruments; it fails only when the meter
// refuses an instrument.
func newObserver(set telemetry.Set, checkSpans bool, now func() time.Time) (*observer, error) {
	o := &observer{set: set, checkSpans: checkSpans, now: now, epoch: time.Now()}
	for oi := range numOutcomes {
		o.durationOpts[oi] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(AttrOutcome.String(outcomeNames[oi])))}
		for ri := range numReasons {
			o.checkAttrs[oi][ri] = metric.WithAttributeSet(attribute.NewSet(
				AttrOutcome.String(outcomeNames[oi]), AttrReason.String(string(checkReasons[ri]))))
		}
	}
	m := set.Meter
	var err error
	if o.checkDuration, err = m.Float64Histogram("townhall.check.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of Checker.Check, measured on a random sample of one check in 64."),
		metric.WithExplicitBucketBoundaries(1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 1e-3, 1e-2)); err != nil {
		return nil, err
	}
	if o.changes, err = m.Int64Counter("townhall.admin.changes", metric.WithUnit("{change}"),
		metric.WithDescription("Admin changes by audit event type and outcome.")); err != nil {
		return nil, err
	}
	if o.snapshotLoad, err = m.Float64Histogram("townhall.snapshot.load.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of full snapshot loads (at start and when a replica fell far behind).")); err != nil {
		return nil, err
	}
	return o, nil
}

// observe registers the callback of the observable instruments over c.
func (o *observer) observe(c *Checker) error {
	m := o.set.Meter
	counter := func(name, unit, desc string) (metric.Int64ObservableCounter, error) {
		return m.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	}
	gauge := func(name, unit, desc string) (metric.Int64ObservableGauge, error) {
		return m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
	}
	checks, err1 := counter("townhall.checks", "{check}", "Checker.Check calls by outcome and reason.")
	revision, err2 := gauge("townhall.snapshot.revision", "{revision}", "Database revision (audit sequence number) the snapshot reflects.")
	lag, err3 := gauge("townhall.sync.lag", "{revision}", "Revisions the snapshot is behind the database head last read.")
	age, err4 := m.Float64ObservableGauge("townhall.sync.age", metric.WithUnit("s"),
		metric.WithDescription("Seconds since the last successful sync."))
	failures, err5 := counter("townhall.sync.failures", "{failure}", "Failed syncs.")
	reconnects, err6 := counter("townhall.listener.reconnects", "{reconnect}", "LISTEN sessions established after the first (PostgreSQL).")
	size, err7 := gauge("townhall.snapshot.size", "{entity}", "Users, grants and locations held in the snapshot.")
	if err := errors.Join(err1, err2, err3, err4, err5, err6, err7); err != nil {
		return err
	}
	entity := func(name string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(AttrEntity.String(name)))
	}
	usersAttr, grantsAttr, locationsAttr := entity("users"), entity("grants"), entity("locations")
	var err error
	o.registration, err = m.RegisterCallback(func(_ context.Context, obs metric.Observer) error {
		for oi := range numOutcomes {
			for ri := range numReasons {
				if n := o.checks[oi][ri].Load(); n > 0 {
					obs.ObserveInt64(checks, n, o.checkAttrs[oi][ri])
				}
			}
		}
		st := c.syncStatus()
		obs.ObserveInt64(revision, st.Revision)
		obs.ObserveInt64(lag, st.Behind)
		obs.ObserveFloat64(age, o.now().Sub(st.LastSync).Seconds())
		obs.ObserveInt64(failures, o.syncFailures.Load())
		if c.listener != nil {
			obs.ObserveInt64(reconnects, int64(max(c.listener.Connections()-1, 0)))
		}
		snap := c.snapshot()
		u, g := o.snapshotSize(snap)
		obs.ObserveInt64(size, u, usersAttr)
		obs.ObserveInt64(size, g, grantsAttr)
		obs.ObserveInt64(size, int64(snap.Tree.Len()), locationsAttr)
		return nil
	}, checks, revision, lag, age, failures, reconnects, size)
	return err
}

// close unregisters the observable callback.
func (o *observer) close() {
	if o.registration != nil {
		_ = o.registration.Unregister() // only fails for a callback already gone
	}
}

func (o *observer) snapshotSize(snap *snapshot.Snapshot) (users, grants int64) {
	o.sizeMu.Lock()
	defer o.sizeMu.Unlock()
	if o.sizeOf != snap {
		var u, g int64
		snap.Users.Each(func(_ string, s *snapshot.UserState) bool {
			u++
			g += int64(len(s.Grants))
			return true
		})
		o.sizeOf, o.sizeUser, o.sizeGr = snap, u, g
	}
	return o.sizeUser, o.sizeGr
}

// checkProbe carries what beginCheck started to endCheck.
type checkProbe struct {
	start int64 // nanoseconds since the observer's epoch; 0 when this check is not timed
	ctx   context.Context
	span  trace.Span
}

// beginCheck starts observing a check: a span when WithCheckSpans asked
// for one, and the clock when the check is to be timed: after every 64th
// check counted under one outcome and reason, the next check is. That
// costs a check one atomic load of a line that is written once in 64
// checks.
func (o *observer) beginCheck(ctx context.Context, req *Request) checkProbe {
	var p checkProbe
	if o.checkSpans {
		p.ctx, p.span = o.startCheckSpan(ctx, req)
	}
	if o.timeNext.Load() && o.timeNext.CompareAndSwap(true, false) {
		p.start = o.clock()
	}
	return p
}

// clock reads the monotonic clock, never 0.
func (o *observer) clock() int64 { return int64(time.Since(o.epoch)) | 1 }

func (o *observer) startCheckSpan(ctx context.Context, req *Request) (context.Context, trace.Span) {
	return o.set.Tracer.Start(ctx, "townhall.Checker.Check", trace.WithAttributes(
		AttrModule.String(req.Module), AttrAction.String(req.Action)))
}

// endCheck counts the check's outcome and reason, and records its duration
// when it was timed.
func (o *observer) endCheck(ctx context.Context, p checkProbe, d Decision, err error) {
	oi := outcomeDenied
	switch {
	case err != nil:
		oi = outcomeError
	case d.Allowed:
		oi = outcomeAllowed
	}
	if o.set.Counting {
		o.count(oi, d.Reason)
		if p.start != 0 {
			if p.span != nil {
				ctx = p.ctx
			}
			elapsed := time.Duration(o.clock() - p.start)
			o.checkDuration.Record(ctx, elapsed.Seconds(), o.durationOpts[oi]...)
		}
	}
	if p.span != nil {
		p.span.SetAttributes(AttrOutcome.String(outcomeNames[oi]), AttrReason.String(string(d.Reason)))
		telemetry.End(p.span, err)
	}
}

// count counts a decision; after every 64th of an outcome and reason it
// has the next Check timed.
func (o *observer) count(oi int, r Reason) {
	if o.checks[oi][reasonIndex(r)].Add(1)&checkSampleMask == 0 {
		o.timeNext.Store(true)
	}
}

// decided counts a decision Decide made (handles: no context, no error,
// not timed).
func (o *observer) decided(d *Decision) {
	if !o.set.Counting {
		return
	}
	oi := outcomeDenied
	if d.Allowed {
		oi = outcomeAllowed
	}
	o.count(oi, d.Reason)
}

// loaded records the duration of a full snapshot load.
func (o *observer) loaded(ctx context.Context, start time.Time) {
	o.snapshotLoad.Record(ctx, time.Since(start).Seconds())
}

// synced records a sync's result: the head it read (-1 when it could not)
// and its error.
func (o *observer) synced(head int64, err error, background bool) {
	if head >= 0 {
		o.head.Store(head)
	}
	if err == nil {
		o.lastSync.Store(o.now().UnixNano())
		o.errMu.Lock()
		recovered := o.lastErr != nil
		o.lastErr = nil
		o.errMu.Unlock()
		if recovered {
			o.set.Logger.Info("townhall: sync recovered", slog.Int64("revision", head))
		}
		return
	}
	o.syncFailures.Add(1)
	o.errMu.Lock()
	o.lastErr, o.lastErrAt = err, o.now()
	o.errMu.Unlock()
	if background {
		o.set.Logger.Warn("townhall: background sync failed", slog.Any("error", err))
	}
}

// changeSpan names the span of an Admin change.
func changeSpan(typ string) string { return "townhall.Admin." + typ }

// startChange starts the span of an Admin change.
func (o *observer) startChange(ctx context.Context, actor Subject, ch change) (context.Context, trace.Span) {
	return o.set.Start(ctx, changeSpan(ch.typ), AttrChangeType.String(ch.typ),
		attribute.String("townhall.actor.id", actorID(actor)), attribute.String("townhall.user.id", ch.userID),
		attribute.String("townhall.location.id", ch.location))
}

// endChange ends the span of an Admin change and counts it. A change
// refused inside its transaction (ErrForbidden) is counted by refused,
// which audits it.
func (o *observer) endChange(ctx context.Context, span trace.Span, ch change, err error) {
	outcome := OutcomeApplied
	switch {
	case errors.Is(err, ErrForbidden):
		outcome = OutcomeRefused
	case err != nil:
		outcome = OutcomeFailed
	}
	span.SetAttributes(AttrOutcome.String(outcome))
	telemetry.End(span, err)
	if outcome != OutcomeRefused {
		o.countChange(ctx, ch.typ, outcome)
	}
}

func (o *observer) countChange(ctx context.Context, typ, outcome string) {
	o.changes.Add(ctx, 1, metric.WithAttributes(AttrChangeType.String(typ), AttrOutcome.String(outcome)))
}

// endRefusal ends the span of a refused change, counts it and logs it at
// Info (IDs and the reason only). auditErr is the error of recording the
// refusal, if any.
func (o *observer) endRefusal(ctx context.Context, span trace.Span, actor Subject, ch change, reason string, auditErr error) {
	span.SetAttributes(AttrOutcome.String(OutcomeRefused), AttrReason.String(reason))
	telemetry.End(span, auditErr)
	o.countChange(ctx, ch.typ, OutcomeRefused)
	o.set.Logger.LogAttrs(ctx, slog.LevelInfo, "townhall: change refused",
		slog.String("change", ch.typ), slog.String("actor", actorID(actor)),
		slog.String("impersonator", actor.ImpersonatorID), slog.String("user", ch.userID),
		slog.String("location", ch.location), slog.String("role", ch.role), slog.String("reason", reason))
}

// startFilter starts the span of building a record filter.
func (o *observer) startFilter(ctx context.Context, module, action string) (context.Context, trace.Span) {
	return o.set.Start(ctx, "townhall.Checker.Filter", AttrModule.String(module), AttrAction.String(action))
}

// endFilter ends the span of building f.
func (o *observer) endFilter(span trace.Span, f *RecordFilter, err error) {
	if err == nil && span.IsRecording() {
		span.SetAttributes(attribute.Bool("townhall.filter.unrestricted", f.Unrestricted()), attribute.Bool("townhall.filter.empty", f.Empty()))
	}
	telemetry.End(span, err)
}

// observed runs fn, an Admin change, inside its span, and counts it.
func (a *Admin) observed(ctx context.Context, actor Subject, ch change, fn func(ctx context.Context) error) error {
	ctx, span := a.c.obs.startChange(ctx, actor, ch)
	err := fn(ctx)
	a.c.obs.endChange(ctx, span, ch, err)
	return err
}

// traced wraps middleware Require built in a span, a child of the
// request's, that covers the decision: it ends before the next handler
// runs, which continues under the request's own span.
func (o *observer) traced(module, action string, guard func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	name := "townhall.Require " + module + "." + action
	return func(next http.Handler) http.Handler {
		plain := guard(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, span := o.set.Start(r.Context(), name, AttrModule.String(module), AttrAction.String(action))
			if !span.IsRecording() {
				plain.ServeHTTP(w, r)
				return
			}
			parent := trace.SpanFromContext(r.Context())
			rec := &statusRecorder{ResponseWriter: w}
			passed := false
			guard(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				passed = true
				d, _ := DecisionFrom(r.Context())
				span.SetAttributes(AttrOutcome.String(OutcomeAllowed), AttrReason.String(string(d.Reason)))
				span.End()
				next.ServeHTTP(w, r.WithContext(trace.ContextWithSpan(r.Context(), parent)))
			})).ServeHTTP(rec, r.WithContext(ctx))
			if !passed {
				outcome := OutcomeDenied
				if rec.status >= 500 {
					outcome = OutcomeError
				}
				span.SetAttributes(AttrOutcome.String(outcome), attribute.Int("http.response.status_code", rec.status))
				span.End()
			}
		})
	}
}

// statusRecorder remembers the status Require answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}
