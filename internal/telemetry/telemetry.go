// Package telemetry holds what townhall's packages share to log, trace and
// measure: the host's logger and OpenTelemetry providers, resolved to their
// defaults once, and the span helpers every package uses alike.
//
// Only the OpenTelemetry API is imported here; exporters and SDKs are the
// host's choice.
package telemetry

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of every tracer and meter townhall
// creates.
const Scope = "github.com/civicstack/townhall"

// Set is a resolved logger, tracer and meter. The zero Set is usable: it
// logs nothing, and traces and measures through the global providers.
type Set struct {
	Logger *slog.Logger
	Tracer trace.Tracer
	Meter  metric.Meter
	// Counting is false when the meter provider is OpenTelemetry's no-op
	// provider: then nothing is measured at all, not even the atomic
	// counters observable instruments would read.
	Counting bool
}

// New resolves a Set: a nil logger discards, a nil provider is the global
// one (a no-op until the host sets one with otel.SetTracerProvider or
// otel.SetMeterProvider).
func New(log *slog.Logger, tp trace.TracerProvider, mp metric.MeterProvider) Set {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	counting := true
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if _, ok := mp.(metricnoop.MeterProvider); ok {
		counting = false
	}
	return Set{Logger: log, Tracer: tp.Tracer(Scope), Meter: mp.Meter(Scope), Counting: counting}
}

// Start starts a span named name, a child of the span in ctx.
func (s Set) Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return s.Tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// End ends span, recording err (when not nil) as the span's error status.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
