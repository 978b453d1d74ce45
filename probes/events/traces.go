package events

import (
	"encoding/hex"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// Side converts a finished migration into the model every other part of
// migtrace uses: the measured phases, the RAM moved in each, and on a
// destination the time-data stages. Probes carry no hrtime or wall clock
// for the stages, so those stay unrecorded. Monotonic times become
// wall-clock times by adding wallOffset (wall clock minus
// CLOCK_MONOTONIC, see MonotonicToWall). The trace id is the migration
// UUID, so both sides' traces join.
func (m *Migration) Side(wallOffset time.Duration) model.Side {
	wall := func(mono uint64) time.Time { return time.Unix(0, int64(mono)+int64(wallOffset)) }
	s := model.Side{
		ID: m.ID.String(), Role: m.role, TraceID: hex.EncodeToString(m.ID[:]),
		StartTime: wall(m.BeginTS), EndTime: wall(m.EndTS), Result: schema.ResultSuccess,
	}
	if m.Failed {
		s.Result = schema.ResultFailure
	}
	for i := range m.Phases {
		p := &m.Phases[i]
		s.Phases = append(s.Phases, model.PhaseTiming{
			Phase: p.phase, BeginNs: p.BeginNs, EndNs: p.EndNs,
			Bytes: int64(p.RAM.Bytes), Pages: int64(p.RAM.Pages), Paused: p.Paused, Failed: p.Failed,
		})
		if p.Failed {
			s.ErrorPhase = p.phase.String()
		}
	}
	var prev *Stage
	for i := range m.Stages {
		st := &m.Stages[i]
		v := model.StageValues{
			Present: true, GuestFreq: st.GuestFreq, GuestTSC: st.GuestTSC, BootHrtime: st.BootHrtime,
			DurationNs: st.DurationNs, GuestUptimeNs: st.UptimeNs, MigrateDeltaNs: st.MigrateDeltaNs,
			MigrateDeltaNegative: st.Negative,
		}
		// Deltas are relative to the previous stage, zero for the first,
		// as migrate records them.
		if prev != nil {
			v.GuestTSCDelta, v.BootHrtimeDelta = st.GuestTSC-prev.GuestTSC, st.BootHrtime-prev.BootHrtime
		}
		s.Stages[model.StageIndex(st.stage)] = v
		prev = st
	}
	return s
}

// ServiceName is the service.name of traces built from probes: the spans
// describe a migtrace process seen from outside.
const ServiceName = "migtrace"

// Traces encodes Side(wallOffset) as trace data, through the same codec
// as migrate's own spans, under a resource naming the traced process.
func (m *Migration) Traces(wallOffset time.Duration) ptrace.Traces {
	opts := spancodec.Options{
		Wall:     func(_ *model.Side, mono int64) time.Time { return time.Unix(0, mono+int64(wallOffset)) },
		Resource: []attribute.KeyValue{semconv.ServiceName(ServiceName), semconv.ProcessPID(int(m.PID))},
	}
	return spancodec.Traces(opts, m.Side(wallOffset))
}
