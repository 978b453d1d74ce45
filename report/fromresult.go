package report

import (
	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/tracing/schema"
)

// FromResult builds the model of a migration straight from a side's
// migrate.Result, for tools that hold the result rather than its trace
// (`migtrace migrate` prints its tables this way). A destination's result
// also yields the source's side, from the phase timings the source sent.
func FromResult(res *migrate.Result) []Migration {
	if res == nil {
		return nil
	}
	m := Migration{
		ID: res.ID.String(), Role: res.Role, Peer: res.Peer,
		StartTime: res.Start, Result: schema.ResultSuccess,
		DowntimeNs: res.Downtime.Nanoseconds(),
	}
	if res.Err != nil {
		m.Result, m.Error = schema.ResultFailure, res.Err.Error()
		if p, ok := migrate.FailedPhase(res.Err); ok {
			m.ErrorPhase = p.String()
		}
	}
	m.Phases = phasesFromRecords(res.Phases)
	for _, st := range res.Stages {
		if !st.Stage.Valid() {
			continue
		}
		m.Stages[StageIndex(st.Stage)] = StageValues{
			Present:              true,
			GuestFreq:            st.Data.GuestFreq,
			GuestTSC:             st.Data.GuestTSC,
			BootHrtime:           st.Data.BootHrtime,
			Hrtime:               st.Data.Hrtime,
			Wallclock:            st.Data.Wallclock.String(),
			DurationNs:           st.DurationNs,
			GuestTSCDelta:        st.TSCDelta,
			BootHrtimeDelta:      st.BootHrtimeDelta,
			GuestUptimeNs:        res.Adjustments.GuestUptime,
			MigrateDeltaNs:       res.Adjustments.MigrateDelta,
			MigrateDeltaNegative: res.Adjustments.MigrateDeltaNegative,
			VMMLatencyNs:         st.VMMLatencyNs,
		}
	}
	if res.Role == schema.RoleDestination {
		// The wire estimate is source minus destination; the model's is
		// destination minus source, as in the trace.
		m.ClockOffset = &ClockOffset{OffsetNs: -res.Clock.OffsetNs, ErrorNs: res.Clock.ErrorBoundNs,
			RTTNs: res.Clock.RTTNs, Samples: int64(res.Clock.Samples), SkewCorrected: res.SkewCorrected}
		if res.Err == nil {
			m.Blackout = &Blackout{Ns: res.Blackout.Nanoseconds(), ErrorNs: res.BlackoutError.Nanoseconds()}
		}
	}
	out := []Migration{m}
	if res.Role == schema.RoleDestination && len(res.SourcePhases) > 0 {
		src := Migration{ID: m.ID, Role: schema.RoleSource, StartTime: res.Start, Result: m.Result,
			Phases: phasesFromRecords(res.SourcePhases)}
		out = []Migration{src, m}
	}
	return out
}

func phasesFromRecords(recs []migrate.PhaseRecord) []PhaseTiming {
	out := make([]PhaseTiming, 0, len(recs))
	for _, p := range recs {
		out = append(out, PhaseTiming{
			Phase: p.Phase, BeginNs: p.BeginNs, EndNs: p.EndNs,
			Bytes: int64(p.Bytes), Pages: int64(p.Pages), ZeroPages: int64(p.ZeroPages), Rounds: int64(p.Rounds),
			Paused: p.Phase == schema.PhaseRamPushPostPause, Failed: p.Failed,
		})
	}
	return out
}
