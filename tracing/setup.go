package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/migtrace/migtrace/tracing/schema"
)

// DefaultServiceName is service.name when Config.ServiceName is empty and
// the environment does not set one.
const DefaultServiceName = "migtrace"

// DefaultShutdownTimeout bounds Shutdown when its context has no deadline,
// so an unreachable collector cannot hang process exit.
const DefaultShutdownTimeout = 10 * time.Second

// fileBatchTimeout is how long a finished span may wait before the trace
// file gets it; short, so a long-running server's file stays current.
const fileBatchTimeout = 200 * time.Millisecond

// Environment variables Setup reads itself when Config.Env is set (the
// OTLP exporters and resource detector read the rest).
const (
	EnvTracesExporter     = "OTEL_TRACES_EXPORTER"
	EnvMetricsExporter    = "OTEL_METRICS_EXPORTER"
	EnvOTLPEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvOTLPTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvOTLPProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvServiceName        = "OTEL_SERVICE_NAME"
	EnvResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"
)

// exporterNone is the OTEL_*_EXPORTER value that turns a signal off.
const exporterNone = "none"

// Config says where telemetry goes.
type Config struct {
	// ServiceName is the resource's service.name; DefaultServiceName if
	// empty. With Env, OTEL_SERVICE_NAME overrides it.
	ServiceName string
	// ServiceVersion, if set, becomes service.version and the tracer's
	// instrumentation scope version.
	ServiceVersion string
	// Attributes are added to the resource, e.g. schema.AttrInstance. With
	// Env, OTEL_RESOURCE_ATTRIBUTES overrides keys it also sets.
	Attributes []attribute.KeyValue

	// TraceFile, if not empty, is created (truncated) and receives every
	// span as OTLP JSON Lines.
	TraceFile string

	// Env honours the standard OTEL_* variables: OTEL_TRACES_EXPORTER
	// (otlp, console, none), OTEL_EXPORTER_OTLP_ENDPOINT and
	// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL (grpc,
	// http/protobuf), OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, and
	// OTEL_METRICS_EXPORTER (otlp, console, prometheus, none). Spans go
	// over the network only when OTEL_TRACES_EXPORTER or an OTLP endpoint
	// variable is set, so an unconfigured run makes no connections; metrics
	// are pushed only when OTEL_METRICS_EXPORTER is set.
	Env bool

	// Prometheus creates a Prometheus exporter on a registry of its own,
	// served by Telemetry.MetricsHandler.
	Prometheus bool

	// SpanProcessors and MetricReaders are added as they are, e.g. a
	// tracetest.SpanRecorder or a sdkmetric.ManualReader in tests. Shutdown
	// shuts them down too.
	SpanProcessors []sdktrace.SpanProcessor
	MetricReaders  []sdkmetric.Reader
}

// Telemetry is a configured tracer and meter provider pair. A nil
// *Telemetry is valid: its providers are no-ops and its methods do nothing.
type Telemetry struct {
	tp          trace.TracerProvider
	mp          metric.MeterProvider
	tracer      trace.Tracer
	instruments *Instruments
	metrics     http.Handler

	sdkTP *sdktrace.TracerProvider // nil for NewNoop
	sdkMP *sdkmetric.MeterProvider // nil when there is no reader

	shutdownOnce sync.Once
	shutdownErr  error
}

// NewNoop returns a Telemetry that records nothing.
func NewNoop() *Telemetry {
	tp := tracenoop.NewTracerProvider()
	return &Telemetry{
		tp:      tp,
		mp:      metricnoop.NewMeterProvider(),
		tracer:  tp.Tracer(schema.ScopeName),
		metrics: metricsDisabledHandler(),
	}
}

// Setup builds the providers cfg describes. Spans always get an SDK
// tracer provider, so trace context is created and propagated even when
// nothing exports. On error, whatever was created is shut down.
func Setup(ctx context.Context, cfg Config) (_ *Telemetry, err error) {
	var cleanups []func(context.Context) error
	defer func() {
		if err != nil {
			for _, c := range cleanups {
				_ = c(ctx)
			}
		}
	}()

	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}

	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if cfg.TraceFile != "" {
		exp, err := CreateFileExporter(cfg.TraceFile)
		if err != nil {
			return nil, err
		}
		cleanups = append(cleanups, exp.Shutdown)
		// Blocking: a local file is fast, and a full queue must not drop
		// spans the report needs.
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(exp,
			sdktrace.WithBlocking(), sdktrace.WithBatchTimeout(fileBatchTimeout))))
	}
	if cfg.Env {
		exp, err := envSpanExporter(ctx)
		if err != nil {
			return nil, err
		}
		if exp != nil {
			cleanups = append(cleanups, exp.Shutdown)
			// Not blocking: an unreachable collector must not stall a
			// migration. The default queue (2048) holds many migrations;
			// Shutdown drains it.
			tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(exp)))
		}
	}
	for _, sp := range cfg.SpanProcessors {
		tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(sp))
	}

	t := &Telemetry{metrics: metricsDisabledHandler()}
	var readers []sdkmetric.Reader
	if cfg.Prometheus {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithTranslationStrategy(promStrategy))
		if err != nil {
			return nil, fmt.Errorf("creating Prometheus exporter: %w", err)
		}
		readers = append(readers, exp)
		cleanups = append(cleanups, exp.Shutdown)
		t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	if cfg.Env {
		r, err := envMetricReader(ctx)
		if err != nil {
			return nil, err
		}
		if r != nil {
			readers = append(readers, r)
			cleanups = append(cleanups, r.Shutdown)
		}
	}
	readers = append(readers, cfg.MetricReaders...)

	t.sdkTP = sdktrace.NewTracerProvider(tpOpts...)
	t.tp = t.sdkTP
	cleanups = append(cleanups, t.sdkTP.Shutdown)
	var tracerOpts []trace.TracerOption
	if cfg.ServiceVersion != "" {
		tracerOpts = append(tracerOpts, trace.WithInstrumentationVersion(cfg.ServiceVersion))
	}
	t.tracer = t.tp.Tracer(schema.ScopeName, tracerOpts...)

	if len(readers) > 0 {
		mpOpts := []sdkmetric.Option{sdkmetric.WithResource(res)}
		for _, r := range readers {
			mpOpts = append(mpOpts, sdkmetric.WithReader(r))
		}
		t.sdkMP = sdkmetric.NewMeterProvider(mpOpts...)
		t.mp = t.sdkMP
		cleanups = append(cleanups, t.sdkMP.Shutdown)
	} else {
		// Nothing would read the measurements; skip the SDK's work.
		t.mp = metricnoop.NewMeterProvider()
	}
	t.instruments, err = NewInstruments(t.mp)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func newResource(ctx context.Context, cfg Config) (*resource.Resource, error) {
	name := cfg.ServiceName
	if name == "" {
		name = DefaultServiceName
	}
	attrs := []attribute.KeyValue{semconv.ServiceName(name)}
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	attrs = append(attrs, cfg.Attributes...)
	// Later options win, so the environment overrides the caller's
	// defaults, as the OTel spec asks.
	opts := []resource.Option{resource.WithTelemetrySDK(), resource.WithAttributes(attrs...)}
	if cfg.Env {
		opts = append(opts, resource.WithFromEnv())
	}
	res, err := resource.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("building resource (check %s and %s): %w", EnvServiceName, EnvResourceAttributes, err)
	}
	return res, nil
}

// envSpanExporter returns the exporter the OTEL_* variables name, or nil
// when they name none. autoexport would default to OTLP on localhost:4318;
// without an explicit exporter or endpoint that only yields connection
// errors, so migtrace exports nothing then.
func envSpanExporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	kind := os.Getenv(EnvTracesExporter)
	if kind == "" && os.Getenv(EnvOTLPEndpoint) == "" && os.Getenv(EnvOTLPTracesEndpoint) == "" {
		return nil, nil
	}
	if kind == exporterNone {
		return nil, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, fmt.Errorf("creating span exporter from %s=%q, %s=%q: %w",
			EnvTracesExporter, kind, EnvOTLPProtocol, os.Getenv(EnvOTLPProtocol), err)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return nil, nil
	}
	return exp, nil
}

// envMetricReader returns the reader OTEL_METRICS_EXPORTER names, or nil
// when it is unset or "none": metrics have their own /metrics endpoint and
// Jaeger-style trace endpoints reject OTLP metrics.
func envMetricReader(ctx context.Context) (sdkmetric.Reader, error) {
	kind := os.Getenv(EnvMetricsExporter)
	if kind == "" || kind == exporterNone {
		return nil, nil
	}
	r, err := autoexport.NewMetricReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("creating metric reader from %s=%q: %w", EnvMetricsExporter, kind, err)
	}
	return r, nil
}

func metricsDisabledHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "metrics are disabled: the Prometheus exporter is off", http.StatusNotFound)
	})
}

var (
	noopTracerProvider = tracenoop.NewTracerProvider()
	noopMeterProvider  = metricnoop.NewMeterProvider()
)

// TracerProvider returns the tracer provider (a no-op for a nil Telemetry).
func (t *Telemetry) TracerProvider() trace.TracerProvider {
	if t == nil {
		return noopTracerProvider
	}
	return t.tp
}

// MeterProvider returns the meter provider (a no-op for a nil Telemetry).
func (t *Telemetry) MeterProvider() metric.MeterProvider {
	if t == nil {
		return noopMeterProvider
	}
	return t.mp
}

// Tracer returns the tracer for schema.ScopeName.
func (t *Telemetry) Tracer() trace.Tracer {
	if t == nil {
		return noopTracerProvider.Tracer(schema.ScopeName)
	}
	return t.tracer
}

// Instruments returns the metric instruments; nil (which records nothing)
// for a nil or no-op Telemetry.
func (t *Telemetry) Instruments() *Instruments {
	if t == nil {
		return nil
	}
	return t.instruments
}

// MetricsHandler serves the Prometheus text format for /metrics. When the
// Prometheus exporter is off (or t is nil) it answers every request with
// 404 and a one-line reason; it is never nil.
func (t *Telemetry) MetricsHandler() http.Handler {
	if t == nil {
		return metricsDisabledHandler()
	}
	return t.metrics
}

// ForceFlush exports every finished span and pushes metrics now.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	if t.sdkTP != nil {
		if err := t.sdkTP.ForceFlush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flushing spans: %w", err))
		}
	}
	if t.sdkMP != nil {
		if err := t.sdkMP.ForceFlush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flushing metrics: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown exports every finished span, then stops all exporters and closes
// the trace file. It waits until ctx is done, or DefaultShutdownTimeout
// when ctx has no deadline, and returns every exporter's error joined. It
// is idempotent: later calls return the first call's result.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	t.shutdownOnce.Do(func() {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, DefaultShutdownTimeout)
			defer cancel()
		}
		var errs []error
		if t.sdkTP != nil {
			if err := t.sdkTP.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("shutting down tracing: %w", err))
			}
		}
		if t.sdkMP != nil {
			if err := t.sdkMP.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("shutting down metrics: %w", err))
			}
		}
		t.shutdownErr = errors.Join(errs...)
	})
	return t.shutdownErr
}
