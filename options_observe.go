package townhall

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// observeConfig is where the platform logs, traces and measures.
type observeConfig struct {
	logger     *slog.Logger
	tracer     trace.TracerProvider
	meter      metric.MeterProvider
	checkSpans bool
}

// WithLogger sets the logger of the platform's background work and
// refusals (default: discard). It receives one record per failure of
// background work (sync, LISTEN session, reconnection, audit write, audit
// events dropped), one per refused Admin change (Info: change type, actor,
// target and reason, IDs only) and one per registry rewrite at Open.
// Records never carry a password, token, key or email.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.obs.logger = l } }

// WithTracerProvider sets the provider of the platform's spans (default:
// the global provider, a no-op until the host sets one): Open, every Admin
// change, Checker.Sync, filter building and Require. Checks have no span
// unless WithCheckSpans.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.obs.tracer = tp } }

// WithMeterProvider sets the provider of the platform's metrics (default:
// the global provider; see the package documentation for the list). With
// OpenTelemetry's no-op provider (go.opentelemetry.io/otel/metric/noop)
// checks are not even counted.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.obs.meter = mp } }

// WithCheckSpans makes every Checker.Check a span, a child of the span in
// its context. Off by default: checks are the bulk of traffic and take
// well under a microsecond, less than a span costs.
func WithCheckSpans() Option { return func(c *config) { c.obs.checkSpans = true } }
