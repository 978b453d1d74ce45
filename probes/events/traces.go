package events

import (
	"encoding/binary"
	"hash/fnv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/schema"
)

// ServiceName is the service.name of traces built from probes: the spans
// describe a migtrace process seen from outside.
const ServiceName = "migtrace"

// Traces converts a finished migration into trace data shaped like
// migrate's own spans: a schema.SpanMigration root with a child span per
// measured phase and, on the destination's TimeData span, one
// schema.EventTimeDataStage event per stage. The trace ID is the migration
// UUID, so both sides' traces join; span IDs are derived from (UUID, role,
// phase), so converting twice gives the same IDs. Monotonic times become
// wall-clock times by adding wallOffset (wall clock minus CLOCK_MONOTONIC,
// see MonotonicToWall).
func (m *Migration) Traces(wallOffset time.Duration) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr(string(semconv.ServiceNameKey), ServiceName)
	res.PutInt(string(semconv.ProcessPIDKey), int64(m.PID))
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(schema.ScopeName)
	spans := ss.Spans()
	wall := func(mono int64) pcommon.Timestamp {
		return pcommon.Timestamp(mono + int64(wallOffset))
	}
	traceID := pcommon.TraceID(m.ID)
	rootID := m.spanID(0)

	root := spans.AppendEmpty()
	root.SetName(schema.SpanMigration)
	root.SetTraceID(traceID)
	root.SetSpanID(rootID)
	root.SetKind(ptrace.SpanKindInternal)
	root.SetStartTimestamp(wall(int64(m.BeginTS)))
	root.SetEndTimestamp(wall(int64(m.EndTS)))
	m.putIdentity(root.Attributes())
	result := schema.ResultSuccess
	if m.Failed {
		result = schema.ResultFailure
		root.Status().SetCode(ptrace.StatusCodeError)
	}
	root.Attributes().PutStr(schema.AttrResult, result)

	stageParent := root
	for i := range m.Phases {
		p := &m.Phases[i]
		sp := spans.AppendEmpty()
		sp.SetName(schema.PhaseSpanName(p.phase))
		sp.SetTraceID(traceID)
		sp.SetSpanID(m.spanID(p.phase))
		sp.SetParentSpanID(rootID)
		sp.SetKind(ptrace.SpanKindInternal)
		sp.SetStartTimestamp(wall(p.BeginNs))
		sp.SetEndTimestamp(wall(p.EndNs))
		a := sp.Attributes()
		putAttributes(a, tracing.PhaseSpanAttributes(m.ID.String(), m.role, p.phase, p.BeginNs))
		putAttributes(a, []attribute.KeyValue{tracing.PhaseEnd(p.EndNs)})
		if p.RAM.Pages != 0 || p.RAM.Bytes != 0 {
			a.PutInt(schema.AttrRAMBytes, int64(p.RAM.Bytes))
			a.PutInt(schema.AttrRAMPages, int64(p.RAM.Pages))
			a.PutBool(schema.AttrRAMPaused, p.Paused)
		}
		if p.Failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
			root.Attributes().PutStr(schema.AttrErrorPhase, p.phase.String())
		}
		if p.phase == schema.PhaseTimeData {
			stageParent = sp
		}
	}

	for i := range m.Stages {
		s := &m.Stages[i]
		ev := stageParent.Events().AppendEmpty()
		ev.SetName(schema.EventTimeDataStage)
		ev.SetTimestamp(wall(int64(s.Timestamp)))
		// Deltas are relative to the previous stage, zero for the first, as
		// migrate records them. The probe carries no hrtime or wall clock,
		// so unlike migrate's events these have neither.
		var tscDelta uint64
		var bootDelta int64
		if i > 0 {
			prev := &m.Stages[i-1]
			tscDelta, bootDelta = s.GuestTSC-prev.GuestTSC, s.BootHrtime-prev.BootHrtime
		}
		putAttributes(ev.Attributes(), []attribute.KeyValue{
			attribute.String(schema.AttrTimeStage, s.stage.String()),
			tracing.Uint64(schema.AttrGuestFreq, s.GuestFreq),
			tracing.GuestTSC(schema.AttrGuestTSC, s.GuestTSC),
			attribute.Int64(schema.AttrBootHrtime, s.BootHrtime),
			attribute.Int64(schema.AttrStageDurationNs, s.DurationNs),
			tracing.GuestTSC(schema.AttrGuestTSCDelta, tscDelta),
			attribute.Int64(schema.AttrBootHrtimeDelta, bootDelta),
			attribute.Int64(schema.AttrGuestUptimeNs, s.UptimeNs),
			attribute.Int64(schema.AttrMigrateDeltaNs, s.MigrateDeltaNs),
			attribute.Bool(schema.AttrMigrateDeltaNegative, s.Negative),
		})
	}
	return td
}

// putAttributes copies OTel attributes into a pdata map, so the encodings
// defined once in package tracing serve here too.
func putAttributes(dst pcommon.Map, kvs []attribute.KeyValue) {
	for _, kv := range kvs {
		k := string(kv.Key)
		switch kv.Value.Type() {
		case attribute.BOOL:
			dst.PutBool(k, kv.Value.AsBool())
		case attribute.INT64:
			dst.PutInt(k, kv.Value.AsInt64())
		case attribute.FLOAT64:
			dst.PutDouble(k, kv.Value.AsFloat64())
		default:
			dst.PutStr(k, kv.Value.Emit())
		}
	}
}

func (m *Migration) putIdentity(a pcommon.Map) {
	a.PutStr(schema.AttrMigrationID, m.ID.String())
	a.PutStr(schema.AttrRole, m.role.String())
}

// spanID derives a stable, non-zero span ID from the migration, the side
// and the phase (0 for the root span).
func (m *Migration) spanID(p schema.Phase) pcommon.SpanID {
	h := fnv.New64a()
	h.Write(m.ID[:])
	h.Write([]byte{byte(m.role), byte(p)})
	v := h.Sum64()
	if v == 0 {
		v = 1
	}
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], v)
	return id
}
