package tracing

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// W3C trace-context header names, for protocols that carry them as fields.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// traceContext is the only propagator migtrace uses: source and destination
// are both migtrace, so W3C trace context is all they need to share a trace.
var traceContext propagation.TraceContext

// Inject returns the W3C traceparent and tracestate of the span in ctx, for
// the migration protocol to send to the peer. Both are empty when ctx
// holds no valid span context (e.g. telemetry is a no-op).
func Inject(ctx context.Context) (traceparent, tracestate string) {
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return carrier[HeaderTraceparent], carrier[HeaderTracestate]
}

// Extract returns ctx with the remote span context that traceparent and
// tracestate describe, so spans started from it join the peer's trace. An
// empty or malformed traceparent leaves ctx unchanged.
func Extract(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	carrier := propagation.MapCarrier{HeaderTraceparent: traceparent}
	if tracestate != "" {
		carrier[HeaderTracestate] = tracestate
	}
	return traceContext.Extract(ctx, carrier)
}
