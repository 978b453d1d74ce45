package events

import (
	"encoding/binary"
	"hash/fnv"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

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
		m.putIdentity(a)
		a.PutStr(schema.AttrPhase, p.phase.String())
		a.PutInt(schema.AttrPhaseBeginNs, p.BeginNs)
		a.PutInt(schema.AttrPhaseEndNs, p.EndNs)
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
		a := ev.Attributes()
		a.PutStr(schema.AttrTimeStage, s.stage.String())
		a.PutStr(schema.AttrGuestFreq, strconv.FormatUint(s.GuestFreq, 10))
		a.PutStr(schema.AttrGuestTSC, strconv.FormatUint(s.GuestTSC, 10))
		a.PutInt(schema.AttrBootHrtime, s.BootHrtime)
		a.PutInt(schema.AttrStageDurationNs, s.DurationNs)
		if i > 0 {
			// Deltas are relative to the previous stage; the first has none.
			prev := &m.Stages[i-1]
			a.PutStr(schema.AttrGuestTSCDelta, strconv.FormatUint(s.GuestTSC-prev.GuestTSC, 10))
			a.PutInt(schema.AttrBootHrtimeDelta, s.BootHrtime-prev.BootHrtime)
		}
		a.PutInt(schema.AttrGuestUptimeNs, s.UptimeNs)
		a.PutInt(schema.AttrMigrateDeltaNs, s.MigrateDeltaNs)
		a.PutBool(schema.AttrMigrateDeltaNegative, s.Negative)
	}
	return td
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
