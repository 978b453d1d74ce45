package tracing

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/tracing/schema"
)

func TestInjectExtractJoinsTrace(t *testing.T) {
	source := sdktrace.NewTracerProvider()
	dest := sdktrace.NewTracerProvider()
	ctx, root := source.Tracer(schema.ScopeName).Start(context.Background(), schema.SpanMigration)
	defer root.End()
	tp, ts := Inject(ctx)
	if tp == "" {
		t.Fatal("Inject produced no traceparent")
	}
	if ts != "" {
		t.Errorf("tracestate %q, want empty", ts)
	}

	remote := Extract(context.Background(), tp, "vendor=x")
	_, child := dest.Tracer(schema.ScopeName).Start(remote, schema.SpanMigration)
	defer child.End()
	ro := child.(sdktrace.ReadOnlySpan)
	if ro.SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Errorf("destination trace %s, want %s", ro.SpanContext().TraceID(), root.SpanContext().TraceID())
	}
	if ro.Parent().SpanID() != root.SpanContext().SpanID() || !ro.Parent().IsRemote() {
		t.Errorf("parent %v, want remote %s", ro.Parent(), root.SpanContext().SpanID())
	}
	if ro.SpanContext().TraceState().Get("vendor") != "x" {
		t.Errorf("tracestate %q not carried", ro.SpanContext().TraceState())
	}

	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-0000000000000000-01"} {
		if sc := trace.SpanContextFromContext(Extract(context.Background(), bad, "")); sc.IsValid() {
			t.Errorf("Extract(%q) gave a valid context %v", bad, sc)
		}
	}
}
