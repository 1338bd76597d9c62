package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/civicstack/townhall"
)

// observability is the service's telemetry: JSON logs, and OpenTelemetry
// metrics exported for Prometheus to scrape at /metrics. townhall takes
// both as options; which exporter to use is the host's choice.
type observability struct {
	logger  *slog.Logger
	meter   *sdkmetric.MeterProvider
	metrics http.Handler
}

// newObservability logs JSON to w and keeps metrics in a registry of its
// own (not Prometheus's global one).
func newObservability(w io.Writer) (*observability, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, err
	}
	return &observability{
		logger:  slog.New(slog.NewJSONHandler(w, nil)),
		meter:   sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)),
		metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}

// options hands the logger and the meter provider to townhall.Open.
func (o *observability) options() []townhall.Option {
	return []townhall.Option{townhall.WithLogger(o.logger), townhall.WithMeterProvider(o.meter)}
}

// serve answers GET /metrics and hands everything else to app.
func (o *observability) serve(app http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.metrics)
	mux.Handle("/", app)
	return mux
}

// Close flushes and stops the meter provider.
func (o *observability) Close() error { return o.meter.Shutdown(context.Background()) }
