package tracing_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// Set up telemetry with a trace file, record a phase, shut down, and read
// the file back as the report command does.
func ExampleSetup() {
	dir, err := os.MkdirTemp("", "migtrace-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "trace.jsonl")

	ctx := context.Background()
	tel, err := tracing.Setup(ctx, tracing.Config{ServiceName: "example", TraceFile: path})
	if err != nil {
		log.Fatal(err)
	}
	ctx, root := tel.Tracer().Start(ctx, schema.SpanMigration)
	_, phase := tel.Tracer().Start(ctx, schema.PhaseSpanName(schema.PhaseSync),
		trace.WithAttributes(spancodec.PhaseStartAttributes("example-id", schema.RoleSource, schema.PhaseSync, 100)...))
	phase.SetAttributes(spancodec.PhaseEndAttributes(model.PhaseTiming{Phase: schema.PhaseSync, BeginNs: 100, EndNs: 250})...)
	phase.End()
	tel.Instruments().PhaseDone(ctx, schema.RoleSource, schema.PhaseSync, 150*time.Nanosecond, false)
	root.End()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(shutdownCtx); err != nil {
		log.Fatal(err)
	}

	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	spans := 0
	for sc.Scan() {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(sc.Bytes())
		if err != nil {
			log.Fatal(err)
		}
		spans += td.SpanCount()
	}
	fmt.Println("spans in file:", spans)
	// Output: spans in file: 2
}

// Export spans as OTLP JSON Lines to any writer.
func ExampleNewFileExporter() {
	var buf bytes.Buffer
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracing.NewFileExporter(&buf)))
	_, span := tp.Tracer(schema.ScopeName).Start(context.Background(), schema.PhaseSpanName(schema.PhaseTimeData))
	span.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		log.Fatal(err)
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(bytes.TrimSpace(buf.Bytes()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Name())
	// Output: TimeData
}

// Carry trace context from the source to the destination so both sides
// share one trace.
func ExampleInject() {
	tp := sdktrace.NewTracerProvider()
	ctx, root := tp.Tracer(schema.ScopeName).Start(context.Background(), schema.SpanMigration)
	defer root.End()

	traceparent, tracestate := tracing.Inject(ctx) // sent in the protocol
	remote := tracing.Extract(context.Background(), traceparent, tracestate)

	fmt.Println(trace.SpanContextFromContext(remote).TraceID() == root.SpanContext().TraceID())
	// Output: true
}

// Prometheus names for dashboards.
func ExamplePrometheusName() {
	name, err := tracing.PrometheusName(schema.MetricPhaseDuration)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(name + "_bucket")
	// Output: migration_phase_duration_seconds_bucket
}
