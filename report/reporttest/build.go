package reporttest

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/schema"
)

// TraceID derives the trace id both sides of a migration share from its id,
// so that generated files are reproducible.
func TraceID(migrationID string) pcommon.TraceID {
	sum := sha256.Sum256([]byte(migrationID))
	var id pcommon.TraceID
	copy(id[:], sum[:16])
	return id
}

func spanID(migrationID string, role schema.Role, n int) pcommon.SpanID {
	sum := sha256.Sum256([]byte(migrationID))
	var id pcommon.SpanID
	v := binary.BigEndian.Uint64(sum[16:24]) + uint64(role)<<32 + uint64(n) + 1
	binary.BigEndian.PutUint64(id[:], v)
	return id
}

// AppendSpans appends m's spans to ss: the phase spans first, then the
// root, the order a batch exporter writes them in. The spans' wall-clock
// times start at m.StartTime and follow the phases' monotonic offsets.
func AppendSpans(ss ptrace.SpanSlice, m report.Migration) {
	traceID := TraceID(m.ID)
	rootID := spanID(m.ID, m.Role, 0)
	start := pcommon.NewTimestampFromTime(m.StartTime)
	var base int64
	if len(m.Phases) > 0 {
		base = m.Phases[0].BeginNs
	}
	end := start
	for i, p := range m.Phases {
		sp := ss.AppendEmpty()
		sp.SetTraceID(traceID)
		sp.SetSpanID(spanID(m.ID, m.Role, i+1))
		sp.SetParentSpanID(rootID)
		sp.SetName(schema.PhaseSpanName(p.Phase))
		sp.SetStartTimestamp(start + pcommon.Timestamp(p.BeginNs-base))
		sp.SetEndTimestamp(start + pcommon.Timestamp(p.EndNs-base))
		end = max(end, sp.EndTimestamp())
		a := sp.Attributes()
		a.PutStr(schema.AttrMigrationID, m.ID)
		a.PutStr(schema.AttrRole, m.Role.String())
		a.PutStr(schema.AttrPhase, p.Phase.String())
		a.PutInt(schema.AttrPhaseBeginNs, p.BeginNs)
		a.PutInt(schema.AttrPhaseEndNs, p.EndNs)
		if p.Phase == schema.PhaseRamPushPrePause || p.Phase == schema.PhaseRamPushPostPause || p.Phase == schema.PhaseRamPull {
			a.PutInt(schema.AttrRAMBytes, p.Bytes)
			a.PutInt(schema.AttrRAMPages, p.Pages)
			a.PutInt(schema.AttrRAMZeroPages, p.ZeroPages)
			a.PutInt(schema.AttrRAMRounds, p.Rounds)
			a.PutBool(schema.AttrRAMPaused, p.Paused)
		}
		if p.Failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage(p.Error)
			a.PutStr(schema.AttrError, p.Error)
		}
		appendEvents(sp, m, p.Phase)
	}

	root := ss.AppendEmpty()
	root.SetTraceID(traceID)
	root.SetSpanID(rootID)
	if m.Role == schema.RoleSource {
		// The destination asks for the VM, so its root is the parent.
		root.SetParentSpanID(spanID(m.ID, schema.RoleDestination, 0))
	}
	root.SetName(schema.SpanMigration)
	root.SetStartTimestamp(start)
	root.SetEndTimestamp(end)
	a := root.Attributes()
	a.PutStr(schema.AttrMigrationID, m.ID)
	a.PutStr(schema.AttrRole, m.Role.String())
	a.PutStr(schema.AttrInstance, m.Instance)
	a.PutStr(schema.AttrPeer, m.Peer)
	a.PutStr(schema.AttrBackend, m.Backend)
	a.PutInt(schema.AttrMemoryBytes, m.MemoryBytes)
	a.PutStr(schema.AttrResult, m.Result)
	if m.Error != "" {
		a.PutStr(schema.AttrError, m.Error)
		a.PutStr(schema.AttrErrorPhase, m.ErrorPhase)
		root.Status().SetCode(ptrace.StatusCodeError)
	}
	if m.Role == schema.RoleSource {
		a.PutInt(schema.AttrDowntimeNs, m.DowntimeNs)
	} else if m.Blackout != nil {
		a.PutInt(schema.AttrBlackoutNs, m.Blackout.Ns)
		a.PutInt(schema.AttrBlackoutErrorNs, m.Blackout.ErrorNs)
	}
}

func appendEvents(sp ptrace.Span, m report.Migration, p schema.Phase) {
	at := sp.StartTimestamp()
	switch p {
	case schema.PhaseSync:
		if c := m.ClockOffset; c != nil {
			e := sp.Events().AppendEmpty()
			e.SetName(schema.EventClockOffset)
			e.SetTimestamp(at)
			a := e.Attributes()
			a.PutInt(schema.AttrClockOffsetNs, c.OffsetNs)
			a.PutInt(schema.AttrClockOffsetErrorNs, c.ErrorNs)
			a.PutInt(schema.AttrClockRTTNs, c.RTTNs)
			a.PutInt(schema.AttrClockSamples, c.Samples)
			a.PutBool(schema.AttrClockSkewCorrected, c.SkewCorrected)
		}
	case schema.PhaseTimeData:
		for _, st := range schema.Stages {
			v := m.Stage(st)
			if !v.Present {
				continue
			}
			e := sp.Events().AppendEmpty()
			e.SetName(schema.EventTimeDataStage)
			e.SetTimestamp(at)
			a := e.Attributes()
			a.PutStr(schema.AttrTimeStage, st.String())
			a.PutStr(schema.AttrGuestFreq, strconv.FormatUint(v.GuestFreq, 10))
			a.PutStr(schema.AttrGuestTSC, strconv.FormatUint(v.GuestTSC, 10))
			a.PutInt(schema.AttrBootHrtime, v.BootHrtime)
			a.PutInt(schema.AttrHrtime, v.Hrtime)
			a.PutStr(schema.AttrWallclock, v.Wallclock)
			a.PutInt(schema.AttrStageDurationNs, v.DurationNs)
			a.PutStr(schema.AttrGuestTSCDelta, strconv.FormatUint(v.GuestTSCDelta, 10))
			a.PutInt(schema.AttrBootHrtimeDelta, v.BootHrtimeDelta)
			a.PutInt(schema.AttrGuestUptimeNs, v.GuestUptimeNs)
			a.PutInt(schema.AttrMigrateDeltaNs, v.MigrateDeltaNs)
			a.PutBool(schema.AttrMigrateDeltaNegative, v.MigrateDeltaNegative)
			if st == schema.StageKernel {
				a.PutInt(schema.AttrVMMLatencyNs, v.VMMLatencyNs)
			}
		}
	case schema.PhaseFinish:
		if b := m.Blackout; b != nil && m.Role == schema.RoleDestination {
			e := sp.Events().AppendEmpty()
			e.SetName(schema.EventBlackout)
			e.SetTimestamp(at)
			e.Attributes().PutInt(schema.AttrBlackoutNs, b.Ns)
			e.Attributes().PutInt(schema.AttrBlackoutErrorNs, b.ErrorNs)
		}
		if c := m.Continuity; c != nil {
			e := sp.Events().AppendEmpty()
			e.SetName(schema.EventContinuity)
			e.SetTimestamp(at)
			a := e.Attributes()
			a.PutBool(schema.AttrTSCMonotonic, c.TSCMonotonic)
			a.PutInt(schema.AttrTSCSamples, c.TSCSamples)
			if c.ErrorNs != nil {
				a.PutInt(schema.AttrContinuityErrorNs, *c.ErrorNs)
			}
			if c.TSCOffsetHonoured != nil {
				a.PutBool(schema.AttrTSCOffsetHonoured, *c.TSCOffsetHonoured)
			}
			if !c.MemoryUnchecked {
				a.PutBool(schema.AttrMemoryChecksumOK, c.MemoryChecksumOK)
			}
			a.PutBool(schema.AttrDeviceStateMatches, c.DeviceStateMatches)
		}
	}
	for _, r := range m.PrecopyRounds {
		if r.Phase != p {
			continue
		}
		e := sp.Events().AppendEmpty()
		e.SetName(schema.EventPrecopyRound)
		e.SetTimestamp(at)
		a := e.Attributes()
		a.PutInt(schema.AttrRAMRound, r.Round)
		a.PutInt(schema.AttrRAMPages, r.Pages)
		a.PutInt(schema.AttrRAMZeroPages, r.ZeroPages)
		a.PutInt(schema.AttrRAMBytes, r.Bytes)
		a.PutInt(schema.AttrRAMDirtyPages, r.DirtyPages)
		a.PutInt(schema.AttrRAMRoundNs, r.RoundNs)
	}
}

// Traces returns one TracesData holding every side, each under its own
// resource (one per host process).
func Traces(ms ...report.Migration) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, m := range ms {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "migtrace")
		rs.Resource().Attributes().PutStr("service.instance.id", m.Instance)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(schema.ScopeName)
		AppendSpans(ss.Spans(), m)
	}
	return td
}

// WriteJSONL writes each TracesData as one OTLP JSON line.
func WriteJSONL(w io.Writer, tds ...ptrace.Traces) error {
	bw := bufio.NewWriter(w)
	var jm ptrace.JSONMarshaler
	for _, td := range tds {
		b, err := jm.MarshalTraces(td)
		if err != nil {
			return err
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// AddSourceReport records src's phases and downtime on the destination
// side of the same migration in td, as the destination does with the
// source's Finish message: a schema.EventSourcePhase event per phase on
// its Finish span and schema.AttrSourceDowntimeNs on its root.
func AddSourceReport(td ptrace.Traces, src report.Migration) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				a := sp.Attributes()
				id, _ := a.Get(schema.AttrMigrationID)
				role, _ := a.Get(schema.AttrRole)
				if id.Str() != src.ID || role.Str() != schema.RoleDestination.String() {
					continue
				}
				switch sp.Name() {
				case schema.SpanMigration:
					a.PutInt(schema.AttrSourceDowntimeNs, src.DowntimeNs)
				case schema.PhaseSpanName(schema.PhaseFinish):
					for _, p := range src.Phases {
						e := sp.Events().AppendEmpty()
						e.SetName(schema.EventSourcePhase)
						e.SetTimestamp(sp.EndTimestamp())
						ea := e.Attributes()
						ea.PutStr(schema.AttrPhase, p.Phase.String())
						ea.PutInt(schema.AttrPhaseBeginNs, p.BeginNs)
						ea.PutInt(schema.AttrPhaseEndNs, p.EndNs)
						ea.PutInt(schema.AttrRAMBytes, p.Bytes)
						ea.PutInt(schema.AttrRAMPages, p.Pages)
					}
				}
			}
		}
	}
}
