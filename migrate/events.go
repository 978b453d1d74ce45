package migrate

import (
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/tracing/schema"
)

// stageAttributes is the attribute set of one EventTimeDataStage event.
// Unsigned 64-bit values are base-10 strings (see docs/trace-schema.md).
func stageAttributes(st StageRecord, adj timedata.Adjustments) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String(schema.AttrTimeStage, st.Stage.String()),
		attribute.String(schema.AttrGuestFreq, strconv.FormatUint(st.Data.GuestFreq, 10)),
		attribute.String(schema.AttrGuestTSC, strconv.FormatUint(st.Data.GuestTSC, 10)),
		attribute.Int64(schema.AttrBootHrtime, st.Data.BootHrtime),
		attribute.Int64(schema.AttrHrtime, st.Data.Hrtime),
		attribute.String(schema.AttrWallclock, st.Data.Wallclock.String()),
		attribute.Int64(schema.AttrStageDurationNs, st.DurationNs),
		attribute.String(schema.AttrGuestTSCDelta, strconv.FormatUint(st.TSCDelta, 10)),
		attribute.Int64(schema.AttrBootHrtimeDelta, st.BootHrtimeDelta),
		attribute.Int64(schema.AttrGuestUptimeNs, adj.GuestUptime),
		attribute.Int64(schema.AttrMigrateDeltaNs, adj.MigrateDelta),
		attribute.Bool(schema.AttrMigrateDeltaNegative, adj.MigrateDeltaNegative),
	}
	if st.Stage == schema.StageKernel {
		attrs = append(attrs, attribute.Int64(schema.AttrVMMLatencyNs, st.VMMLatencyNs))
	}
	return attrs
}

// remoteSpanContext parses a W3C traceparent/tracestate pair.
func remoteSpanContext(traceparent, tracestate string) trace.SpanContext {
	carrier := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		carrier["tracestate"] = tracestate
	}
	ctx := propagation.TraceContext{}.Extract(contextBackground(), carrier)
	return trace.SpanContextFromContext(ctx)
}
