package townhall_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/civicstack/townhall"
	"github.com/civicstack/townhall/access"
	"github.com/civicstack/townhall/audit"
	"github.com/civicstack/townhall/internal/dbtest"
	"github.com/civicstack/townhall/internal/testkit"
	"github.com/civicstack/townhall/location"
	"github.com/civicstack/townhall/users"
)

// observed is a platform's telemetry as a host would collect it: the
// OpenTelemetry SDK's in-memory metric reader and span recorder, and a
// slog handler that keeps every record.
type observed struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	logs   *logRecorder
	tp     *sdktrace.TracerProvider
}

func newObserved(t *testing.T) *observed {
	t.Helper()
	o := &observed{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder(), logs: &logRecorder{}}
	o.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(o.spans))
	return o
}

func (o *observed) options() []townhall.Option {
	return []townhall.Option{
		townhall.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(o.reader))),
		townhall.WithTracerProvider(o.tp),
		townhall.WithLogger(slog.New(o.logs)),
	}
}

// metric returns the data of the metric called name; found is false when
// the reader has none.
func (o *observed) metric(t *testing.T, name string) (metricdata.Metrics, bool) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, o.reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// value sums the points of metric name whose attributes include attrs: the
// value of counters and gauges, the count of histograms.
func (o *observed) value(t *testing.T, name string, attrs ...attribute.KeyValue) float64 {
	t.Helper()
	m, ok := o.metric(t, name)
	if !ok {
		return 0
	}
	match := func(set attribute.Set) bool {
		for _, kv := range attrs {
			if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	var sum float64
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				sum += float64(p.Value)
			}
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				sum += float64(p.Value)
			}
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				sum += p.Value
			}
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if match(p.Attributes) {
				sum += float64(p.Count)
			}
		}
	default:
		t.Fatalf("metric %s: unexpected data %T", name, m.Data)
	}
	return sum
}

// ended returns the ended spans called name.
func (o *observed) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range o.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func spanAttr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// logRecorder is a slog.Handler that keeps records, attributes flattened.
type logRecorder struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, rec)
	return nil
}

// find returns the records with message msg.
func (h *logRecorder) find(msg string) []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRecord
	for _, r := range h.records {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// all returns every record.
func (h *logRecorder) all() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), h.records...)
}

// eventually polls cond every 10 ms for up to 20 s.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	outcome = access.AttrOutcome.String
	reason  = func(r access.Reason) attribute.KeyValue { return access.AttrReason.String(string(r)) }
)

func TestObserve_ChecksCountedByOutcomeAndReasonAndSampledForLatency(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t)
	p := testkit.Open(t, append(o.options(), townhall.WithSyncInterval(-1))...)
	testkit.Locations(t, p, location.Location{ID: "M1", Level: "municipality"}, location.Location{ID: "M2", Level: "municipality"})
	testkit.Member(t, p, "u1", access.RoleOperator, "M1")
	u1 := access.Subject{UserID: "u1"}
	allowedReq := access.Request{Municipality: "M1", Module: "occurrences", Action: "update"}
	deniedReq := access.Request{Municipality: "M2", Module: "occurrences", Action: "update"}

	assert.Zero(t, o.value(t, "townhall.checks"), "no check yet")
	const n = 2000
	for range n {
		d, err := p.Checker.Check(ctx, u1, allowedReq)
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
	for range 3 {
		d, err := p.Checker.Check(ctx, u1, deniedReq)
		require.NoError(t, err)
		require.False(t, d.Allowed)
	}
	_, err := p.Checker.Check(ctx, u1, access.Request{Municipality: "M1", Module: "nope", Action: "view"})
	require.Error(t, err)

	assert.Equal(t, float64(n), o.value(t, "townhall.checks", outcome(access.OutcomeAllowed), reason(access.ReasonRole)))
	assert.Equal(t, 3.0, o.value(t, "townhall.checks", outcome(access.OutcomeDenied), reason(access.ReasonOutOfScope)))
	assert.Equal(t, 1.0, o.value(t, "townhall.checks", outcome(access.OutcomeError), reason(access.ReasonInvalid)))
	assert.Equal(t, float64(n+4), o.value(t, "townhall.checks"))

	// Decide, on handles, is counted the same way.
	principal, err := p.Checker.Resolve(ctx, u1)
	require.NoError(t, err)
	action, err := p.Checker.Action("occurrences", "update")
	require.NoError(t, err)
	place, err := p.Checker.Place("M2")
	require.NoError(t, err)
	require.False(t, p.Checker.Decide(principal, action, place).Allowed)
	assert.Equal(t, 4.0, o.value(t, "townhall.checks", outcome(access.OutcomeDenied), reason(access.ReasonOutOfScope)))
	// About one check in 64 is timed: after every 64th of one outcome
	// and reason, the next.
	timed := o.value(t, "townhall.check.duration")
	assert.Equal(t, float64(n/64), timed)
	assert.Empty(t, o.ended("townhall.Checker.Check"), "no span per check unless WithCheckSpans")
}

func TestObserve_CheckSpansOnlyWhenAskedFor(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t)
	p := testkit.Open(t, append(o.options(), townhall.WithSyncInterval(-1), townhall.WithCheckSpans())...)
	testkit.Locations(t, p, location.Location{ID: "M1", Level: "municipality"})
	parentCtx, parent := o.tp.Tracer("host").Start(ctx, "request")
	_, err := p.Checker.Check(parentCtx, access.Subject{}, access.Request{Municipality: "M1", Module: "occurrences", Action: "delete"})
	require.NoError(t, err)
	parent.End()
	spans := o.ended("townhall.Checker.Check")
	require.Len(t, spans, 1)
	assert.Equal(t, parent.SpanContext().SpanID(), spans[0].Parent().SpanID(), "a child of the caller's span")
	assert.Equal(t, access.OutcomeDenied, spanAttr(spans[0], access.AttrOutcome))
	assert.Equal(t, string(access.ReasonNoGrant), spanAttr(spans[0], access.AttrReason))
}

func TestObserve_AdminChangesCountedTracedAndRefusalsLogged(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t)
	p := testkit.Open(t, append(o.options(), townhall.WithSyncInterval(-1))...)
	require.Len(t, o.ended("townhall.Open"), 1, "Open is a span")
	testkit.Locations(t, p, location.Location{ID: "M1", Level: "municipality"})
	testkit.Member(t, p, "op", access.RoleOperator, "M1")
	testkit.Member(t, p, "u2", access.RoleViewer, "M1")

	applied := func(typ string) float64 {
		return o.value(t, "townhall.admin.changes", access.AttrChangeType.String(typ), outcome(access.OutcomeApplied))
	}
	before := applied(audit.TypeGrant)
	require.NoError(t, p.Admin.Grant(ctx, access.System(), "u2", access.RoleManager, "M1"))
	assert.Equal(t, before+1, applied(audit.TypeGrant))
	spans := o.ended("townhall.Admin." + audit.TypeGrant)
	require.NotEmpty(t, spans)
	last := spans[len(spans)-1]
	assert.Equal(t, access.OutcomeApplied, spanAttr(last, access.AttrOutcome))
	assert.Equal(t, "u2", spanAttr(last, "townhall.user.id"))

	// An operator may not grant admin: refused, audited, counted, logged.
	err := p.Admin.Grant(ctx, access.Subject{UserID: "op"}, "u2", access.RoleAdmin, "M1")
	require.ErrorIs(t, err, access.ErrForbidden)
	assert.Equal(t, 1.0, o.value(t, "townhall.admin.changes", access.AttrChangeType.String(audit.TypeGrant), outcome(access.OutcomeRefused)))
	refusedSpans := o.ended("townhall.Admin." + audit.TypeGrant)
	assert.Equal(t, access.OutcomeRefused, spanAttr(refusedSpans[len(refusedSpans)-1], access.AttrOutcome))
	logs := o.logs.find("townhall: change refused")
	require.Len(t, logs, 1)
	assert.Equal(t, slog.LevelInfo, logs[0].level)
	assert.Equal(t, map[string]string{
		"change": audit.TypeGrant, "actor": "op", "impersonator": "", "user": "u2", "location": "M1",
		"role": access.RoleAdmin, "reason": "forbidden",
	}, logs[0].attrs)

	// The cascade of DeleteLocation records its own events; it is counted
	// and traced the same way.
	require.NoError(t, p.Admin.DeleteLocation(ctx, access.System(), "M1"))
	assert.Equal(t, 1.0, applied(audit.TypeLocationDeleted))
	assert.NotEmpty(t, o.ended("townhall.Admin."+audit.TypeLocationDeleted))

	// Bad input names no change: neither counted nor traced.
	require.Error(t, p.Admin.SetUserActive(ctx, access.System(), "ghost", false))
	assert.Empty(t, o.ended("townhall.Admin."+audit.TypeUserActive))

	// A change whose transaction fails is counted as failed, its span
	// carries the error.
	testkit.Locations(t, p, location.Location{ID: "M2", Level: "municipality"})
	testkit.Member(t, p, "u3", access.RoleViewer, "M2")
	db := p.DB()
	require.NoError(t, db.Exec("ALTER TABLE casbin_rule RENAME TO casbin_rule_away").Error)
	err = p.Admin.Grant(ctx, access.System(), "u3", access.RoleManager, "M2")
	require.NoError(t, db.Exec("ALTER TABLE casbin_rule_away RENAME TO casbin_rule").Error)
	require.Error(t, err)
	assert.Equal(t, 1.0, o.value(t, "townhall.admin.changes", access.AttrChangeType.String(audit.TypeGrant), outcome(access.OutcomeFailed)))
	spans = o.ended("townhall.Admin." + audit.TypeGrant)
	last = spans[len(spans)-1]
	assert.Equal(t, access.OutcomeFailed, spanAttr(last, access.AttrOutcome))
	assert.Equal(t, codes.Error, last.Status().Code)
}

func TestObserve_FilterAndRequireAreSpans(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t)
	p := testkit.Open(t, append(o.options(), townhall.WithSyncInterval(-1))...)
	testkit.Locations(t, p, location.Location{ID: "M1", Level: "municipality"})
	testkit.Member(t, p, "op", access.RoleOperator, "M1")

	_, err := p.Checker.Filter(ctx, access.Subject{UserID: "op"}, "occurrences", "view")
	require.NoError(t, err)
	spans := o.ended("townhall.Checker.Filter")
	require.Len(t, spans, 1)
	assert.Equal(t, "occurrences", spanAttr(spans[0], access.AttrModule))

	var inner trace.SpanContext
	h := p.Checker.Require("occurrences", "update", access.WithMunicipalityPathValue("m"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner = trace.SpanContextFromContext(r.Context())
	}))
	mux := http.NewServeMux()
	mux.Handle("/m/{m}/occurrences", h)
	serve := func(user string) (*httptest.ResponseRecorder, trace.Span) {
		reqCtx, parent := o.tp.Tracer("host").Start(ctx, "GET /m/{m}/occurrences")
		defer parent.End()
		req := httptest.NewRequestWithContext(access.WithSubject(reqCtx, access.Subject{UserID: user}), http.MethodGet, "/m/M1/occurrences", nil)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec, parent
	}
	rec, parent := serve("op")
	require.Equal(t, http.StatusOK, rec.Code)
	spans = o.ended("townhall.Require occurrences.update")
	require.Len(t, spans, 1)
	assert.Equal(t, parent.SpanContext().SpanID(), spans[0].Parent().SpanID(), "a child of the request's span")
	assert.Equal(t, access.OutcomeAllowed, spanAttr(spans[0], access.AttrOutcome))
	assert.Equal(t, parent.SpanContext().SpanID(), inner.SpanID(), "the handler continues under the request's span")

	testkit.User(t, p, "nobody")
	rec, _ = serve("nobody")
	require.Equal(t, http.StatusForbidden, rec.Code)
	spans = o.ended("townhall.Require occurrences.update")
	require.Len(t, spans, 2)
	assert.Equal(t, access.OutcomeDenied, spanAttr(spans[1], access.AttrOutcome))
	assert.Equal(t, "403", spanAttr(spans[1], "http.response.status_code"))
}

func TestObserve_SyncRevisionLagAgeAndSnapshot(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t)
	clock := testkit.NewClock()
	dbA, dsn := dbtest.NewWithDSN(t)
	writer, err := townhall.Open(ctx, dbA, townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1))
	require.NoError(t, err)
	t.Cleanup(func() { writer.Close() })
	replica, err := townhall.Open(ctx, dbtest.Open(t, dsn), append(o.options(), townhall.WithKDF(testkit.FastKDF),
		townhall.WithSyncInterval(-1), townhall.WithClock(clock.Now))...)
	require.NoError(t, err)
	t.Cleanup(func() { replica.Close() })

	assert.Equal(t, 1.0, o.value(t, "townhall.snapshot.load.duration"), "the initial load")
	rev0 := o.value(t, "townhall.snapshot.revision")
	assert.Equal(t, float64(replica.Checker.Revision()), rev0)
	assert.Zero(t, o.value(t, "townhall.sync.age"))
	assert.Zero(t, o.value(t, "townhall.snapshot.size", access.AttrEntity.String("users")))

	testkit.Locations(t, writer, location.Location{ID: "M1", Level: "municipality"})
	testkit.Member(t, writer, "u1", access.RoleOperator, "M1")
	clock.Advance(10 * time.Second)
	h, err := replica.Health(ctx)
	require.NoError(t, err)
	assert.Greater(t, h.Sync.Behind, int64(0), "the replica has not synced")
	assert.Equal(t, 10.0, o.value(t, "townhall.sync.age"))
	assert.Equal(t, float64(h.Sync.Behind), o.value(t, "townhall.sync.lag"), "Health read the head")

	require.NoError(t, replica.Checker.Sync(ctx))
	assert.Greater(t, o.value(t, "townhall.snapshot.revision"), rev0)
	assert.Zero(t, o.value(t, "townhall.sync.lag"))
	assert.Zero(t, o.value(t, "townhall.sync.age"))
	assert.Equal(t, 1.0, o.value(t, "townhall.snapshot.size", access.AttrEntity.String("users")))
	assert.Equal(t, 1.0, o.value(t, "townhall.snapshot.size", access.AttrEntity.String("grants")))
	assert.Equal(t, 1.0, o.value(t, "townhall.snapshot.size", access.AttrEntity.String("locations")))
	spans := o.ended("townhall.Checker.Sync")
	require.Len(t, spans, 1)
	assert.Equal(t, fmt.Sprint(replica.Checker.Revision()), spanAttr(spans[0], "townhall.revision.to"))
	h, err = replica.Health(ctx)
	require.NoError(t, err)
	assert.True(t, h.Ready)
	assert.Zero(t, h.Sync.Behind)
	assert.Equal(t, clock.Now(), h.Sync.LastSync)
}

func TestObserve_AuditRingOverflowCountedAndLogged(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t)
	// A ring of 4 drained once a minute (or when half full) overflows
	// under a burst of denied checks.
	p := testkit.Open(t, append(o.options(), townhall.WithSyncInterval(-1), townhall.WithAuditBuffer(4),
		townhall.WithAuditDrainInterval(time.Minute))...)
	testkit.Locations(t, p, location.Location{ID: "M1", Level: "municipality"})
	assert.Equal(t, 4.0, o.value(t, "townhall.audit.queue.capacity"))
	req := access.Request{Municipality: "M1", Module: "occurrences", Action: "delete"}
	for range 1000 {
		_, err := p.Checker.Check(ctx, access.Subject{}, req)
		require.NoError(t, err)
	}
	dropped := o.value(t, "townhall.audit.dropped")
	require.Greater(t, dropped, 0.0, "a burst of 1,000 overflows a ring of 4")
	assert.Equal(t, float64(p.Audit.Stats().Dropped), dropped)
	require.NoError(t, p.Audit.Flush(ctx))
	assert.Zero(t, o.value(t, "townhall.audit.queue.depth"), "flushed")
	logs := o.logs.find("townhall: audit events dropped")
	require.NotEmpty(t, logs)
	assert.Equal(t, slog.LevelWarn, logs[0].level)
	var total int
	for _, l := range logs {
		var n int
		_, err := fmt.Sscan(l.attrs["dropped"], &n)
		require.NoError(t, err)
		total += n
	}
	assert.Equal(t, int(dropped), total, "every drop is in a log record")
	h, err := p.Health(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(dropped), h.Audit.Dropped)
}

// TestObserve_BackgroundSyncFailureLoggedAndRecovered breaks the change
// log under a polling platform (its head table renamed away) and restores
// it.
func TestObserve_BackgroundSyncFailureLoggedAndRecovered(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t)
	p := testkit.Open(t, append(o.options(), townhall.WithSyncInterval(20*time.Millisecond))...)
	db := p.DB()
	require.NoError(t, db.Exec("ALTER TABLE townhall_audit_head RENAME TO townhall_audit_head_away").Error)
	eventually(t, func() bool { return len(o.logs.find("townhall: background sync failed")) > 0 }, "the failure is logged")
	rec := o.logs.find("townhall: background sync failed")[0]
	assert.Equal(t, slog.LevelWarn, rec.level)
	assert.NotEmpty(t, rec.attrs["error"])
	h, err := p.Health(ctx)
	require.Error(t, err, "the revision cannot be read")
	assert.False(t, h.Ready)
	assert.Error(t, h.Sync.LastError)
	assert.Greater(t, o.value(t, "townhall.sync.failures"), 0.0)
	assert.NotEmpty(t, o.ended("townhall.Checker.Sync"), "a failed background sync is a span")

	require.NoError(t, db.Exec("ALTER TABLE townhall_audit_head_away RENAME TO townhall_audit_head").Error)
	eventually(t, func() bool { return len(o.logs.find("townhall: sync recovered")) > 0 }, "the recovery is logged")
	h, err = p.Health(ctx)
	require.NoError(t, err)
	assert.NoError(t, h.Sync.LastError)
	assert.True(t, h.Ready)
}

// TestObserve_ListenerKilledWarnsReconnectsAndRecovers terminates the
// PostgreSQL LISTEN session of a platform.
func TestObserve_ListenerKilledWarnsReconnectsAndRecovers(t *testing.T) {
	if dbtest.Name() != "postgres" {
		t.Skip("LISTEN/NOTIFY is PostgreSQL's")
	}
	ctx := context.Background()
	o := newObserved(t)
	db, dsn := dbtest.NewWithDSN(t)
	p, err := townhall.Open(ctx, db, append(o.options(), townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(time.Hour))...)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	health := func() townhall.Health {
		h, err := p.Health(ctx)
		require.NoError(t, err)
		require.NotNil(t, h.Sync.Listener)
		return h
	}
	eventually(t, func() bool { return health().Sync.Listener.Connected }, "the listener connects")
	assert.Zero(t, o.value(t, "townhall.listener.reconnects"))

	killListeners(t, dsn)
	eventually(t, func() bool { return len(o.logs.find("townhall: listener connection lost")) > 0 }, "the loss is logged")
	rec := o.logs.find("townhall: listener connection lost")[0]
	assert.Equal(t, slog.LevelWarn, rec.level)
	assert.Contains(t, rec.attrs["error"], "terminat", "the server's reason")
	eventually(t, func() bool { return o.value(t, "townhall.listener.reconnects") == 1 }, "the reconnect is counted")
	eventually(t, func() bool { h := health(); return h.Sync.Listener.Connected && h.Ready }, "the health report recovers")
	h := health()
	assert.Equal(t, 1, h.Sync.Listener.Reconnects)
	assert.Error(t, h.Sync.Listener.LastError, "why the session ended is kept")

	// The listener works again: a change from another process arrives
	// without polling.
	other, err := townhall.Open(ctx, dbtest.Open(t, dsn), townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	testkit.Locations(t, other, location.Location{ID: "M1", Level: "municipality"})
	eventually(t, func() bool {
		_, err := p.Checker.Check(ctx, access.Subject{}, access.Request{Municipality: "M1", Module: "occurrences", Action: "view"})
		return err == nil
	}, "the change arrives")
}

func TestObserve_LogsCarryNoSecrets(t *testing.T) {
	ctx := context.Background()
	o := newObserved(t)
	p := testkit.Open(t, append(o.options(), townhall.WithSyncInterval(-1))...)
	testkit.Locations(t, p, location.Location{ID: "M1", Level: "municipality"})
	_, err := p.Users.Create(ctx, users.NewUser{ID: "op", Username: "op", Email: "op@example.org", Password: "correct horse battery"})
	require.NoError(t, err)
	testkit.Member(t, p, "op", access.RoleOperator, "M1")
	testkit.Member(t, p, "u3", access.RoleViewer, "M1")
	testkit.User(t, p, "super")
	require.NoError(t, p.Admin.SetSuperAdmin(ctx, access.System(), "super", true))
	token, err := p.Admin.Impersonate(ctx, access.Subject{UserID: "super"}, "op", "ticket 12", time.Hour)
	require.NoError(t, err)
	as, err := p.Admin.ResolveImpersonation(ctx, token)
	require.NoError(t, err)
	require.ErrorIs(t, p.Admin.Grant(ctx, as, "u3", access.RoleAdmin, "M1"), access.ErrForbidden)

	refused := o.logs.find("townhall: change refused")
	require.Len(t, refused, 1)
	assert.Equal(t, "op", refused[0].attrs["actor"])
	assert.Equal(t, "super", refused[0].attrs["impersonator"])
	for _, r := range o.logs.all() {
		for k, v := range r.attrs {
			for _, secret := range []string{token, "op@example.org", "correct horse battery", "ticket 12"} {
				assert.NotContains(t, v, secret, "%s %s", r.msg, k)
			}
		}
	}
}

func TestObserve_RegistryRewriteAtOpenLogged(t *testing.T) {
	ctx := context.Background()
	_, dsn := dbtest.NewWithDSN(t)
	open := func(reg *access.Registry) *logRecorder {
		t.Helper()
		logs := &logRecorder{}
		p, err := townhall.Open(ctx, dbtest.Open(t, dsn), townhall.WithKDF(testkit.FastKDF), townhall.WithSyncInterval(-1),
			townhall.WithRegistry(reg), townhall.WithLogger(slog.New(logs)))
		require.NoError(t, err)
		require.NoError(t, p.Close())
		return logs
	}
	const msg = "townhall: registry policy rows rewritten"
	first := open(access.DefaultRegistry()).find(msg)
	require.Len(t, first, 1, "a fresh database gets its policy rows")
	assert.Equal(t, "0", first[0].attrs["removed"])
	assert.Equal(t, first[0].attrs["rules"], first[0].attrs["added"])
	assert.Empty(t, open(access.DefaultRegistry()).find(msg), "the same registry rewrites nothing")

	reg := access.DefaultRegistry()
	require.NoError(t, reg.AddRole(access.Role{Name: "clerk", Inherits: []string{access.RoleViewer}}))
	again := open(reg).find(msg)
	require.Len(t, again, 1)
	assert.Equal(t, slog.LevelInfo, again[0].level)
	assert.NotEqual(t, "0", again[0].attrs["added"])
}
