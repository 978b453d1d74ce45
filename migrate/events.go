package migrate

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/tracing"
)

// remoteSpanContext parses a W3C traceparent/tracestate pair.
func remoteSpanContext(traceparent, tracestate string) trace.SpanContext {
	return trace.SpanContextFromContext(tracing.Extract(context.Background(), traceparent, tracestate))
}
