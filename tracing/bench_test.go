package tracing

import (
	"context"
	"io"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// BenchmarkPhase measures what the protocol pays per phase: one phase span
// with its attributes plus one PhaseDone record, with the real SDK
// (exporting OTLP JSON to io.Discard, metrics to the Prometheus registry)
// against the no-op baseline, in the same run. "sdk-batch" is the
// configuration Setup uses for a trace file (conversion and encoding happen
// on the batch goroutine); "sdk-sync" exports inside End, so it shows the
// whole per-span cost including the OTLP JSON encoding.
func BenchmarkPhase(b *testing.B) {
	setups := []struct {
		name string
		tel  func(b *testing.B) *Telemetry
	}{
		{"noop", func(*testing.B) *Telemetry { return NewNoop() }},
		{"sdk-batch", func(b *testing.B) *Telemetry {
			return benchTelemetry(b, sdktrace.NewBatchSpanProcessor(NewFileExporter(io.Discard), sdktrace.WithBlocking()))
		}},
		{"sdk-sync", func(b *testing.B) *Telemetry {
			return benchTelemetry(b, sdktrace.NewSimpleSpanProcessor(NewFileExporter(io.Discard)))
		}},
	}
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			tel := s.tel(b)
			tracer, in := tel.Tracer(), tel.Instruments()
			ctx, root := tracer.Start(context.Background(), schema.SpanMigration)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				p := schema.Phases[i%len(schema.Phases)]
				begin := int64(i)
				_, span := tracer.Start(ctx, schema.PhaseSpanName(p),
					trace.WithAttributes(spancodec.PhaseStartAttributes("3f2a9c1e-0000-4000-8000-000000000000", schema.RoleSource, p, begin)...))
				span.SetAttributes(spancodec.PhaseEndAttributes(model.PhaseTiming{Phase: p, BeginNs: begin, EndNs: begin + 1000})...)
				span.End()
				in.PhaseDone(ctx, schema.RoleSource, p, time.Microsecond, false)
			}
			b.StopTimer()
			root.End()
			if err := tel.Shutdown(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

func benchTelemetry(b *testing.B, sp sdktrace.SpanProcessor) *Telemetry {
	b.Helper()
	tel, err := Setup(context.Background(), Config{Prometheus: true, SpanProcessors: []sdktrace.SpanProcessor{sp}})
	if err != nil {
		b.Fatal(err)
	}
	return tel
}

// BenchmarkInstruments measures the metric calls alone, which the protocol
// makes per RAM round and per phase.
func BenchmarkInstruments(b *testing.B) {
	tel, err := Setup(context.Background(), Config{Prometheus: true})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	in := tel.Instruments()
	ctx := context.Background()
	b.Run("PhaseDone", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			in.PhaseDone(ctx, schema.RoleDestination, schema.Phases[i%len(schema.Phases)], time.Millisecond, false)
		}
	})
	b.Run("RAMTransferred", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			in.RAMTransferred(ctx, schema.RoleSource, false, 4096)
		}
	})
}
