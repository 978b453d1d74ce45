package report

import (
	"time"

	"github.com/migtrace/migtrace/tracing/schema"
)

// Migration is one side (source or destination) of one migration, as far
// as its trace shows it. Fields the trace did not carry keep their zero
// value; the pointer fields are nil when the event was absent.
type Migration struct {
	ID          string      `json:"id"`
	Role        schema.Role `json:"-"`
	TraceID     string      `json:"trace_id,omitempty"`
	Instance    string      `json:"instance,omitempty"`
	Peer        string      `json:"peer,omitempty"`
	Backend     string      `json:"backend,omitempty"`
	MemoryBytes int64       `json:"memory_bytes,omitempty"`
	// Result is schema.ResultSuccess, schema.ResultFailure, or "" when the
	// side's root span was not in the input (e.g. the process died).
	Result     string    `json:"result,omitempty"`
	Error      string    `json:"error,omitempty"`
	ErrorPhase string    `json:"error_phase,omitempty"`
	StartTime  time.Time `json:"start_time"`
	// DowntimeNs is the source's pause-to-handoff time (source only).
	DowntimeNs int64 `json:"downtime_ns,omitempty"`
	// ReportedByPeer marks a source side rebuilt from what the
	// destination recorded of it (schema.EventSourcePhase), used when the
	// input lacks the source's own spans.
	ReportedByPeer bool `json:"reported_by_peer,omitempty"`

	// Phases holds the phases this side ran, in protocol order.
	Phases []PhaseTiming `json:"phases"`
	// Stages holds the destination's time-data stages, indexed by
	// StageIndex; a stage the trace lacked has Present == false.
	Stages        [3]StageValues `json:"-"`
	PrecopyRounds []PrecopyRound `json:"precopy_rounds,omitempty"`
	ClockOffset   *ClockOffset   `json:"clock_offset,omitempty"`
	Blackout      *Blackout      `json:"blackout,omitempty"`
	Continuity    *Continuity    `json:"continuity,omitempty"`
}

// PhaseTiming is one phase span. BeginNs and EndNs are the host monotonic
// clock (schema.AttrPhaseBeginNs/EndNs) when the span carried them, so
// durations match DTrace's `timestamp` arithmetic; otherwise the span's
// start and end times.
type PhaseTiming struct {
	Phase     schema.Phase `json:"-"`
	BeginNs   int64        `json:"begin_ns"`
	EndNs     int64        `json:"end_ns"`
	Bytes     int64        `json:"bytes,omitempty"`
	Pages     int64        `json:"pages,omitempty"`
	ZeroPages int64        `json:"zero_pages,omitempty"`
	Rounds    int64        `json:"rounds,omitempty"`
	Paused    bool         `json:"paused,omitempty"`
	Failed    bool         `json:"failed,omitempty"`
	Error     string       `json:"error,omitempty"`
}

// DurationNs is EndNs − BeginNs.
func (p PhaseTiming) DurationNs() int64 { return p.EndNs - p.BeginNs }

// StageValues is one schema.EventTimeDataStage event.
type StageValues struct {
	Present              bool   `json:"-"`
	GuestFreq            uint64 `json:"guest_freq_hz"`
	GuestTSC             uint64 `json:"guest_tsc"`
	BootHrtime           int64  `json:"boot_hrtime"`
	Hrtime               int64  `json:"hrtime"`
	Wallclock            string `json:"wallclock,omitempty"`
	DurationNs           int64  `json:"duration_ns"`
	GuestTSCDelta        uint64 `json:"guest_tsc_delta"`
	BootHrtimeDelta      int64  `json:"boot_hrtime_delta"`
	GuestUptimeNs        int64  `json:"guest_uptime_ns"`
	MigrateDeltaNs       int64  `json:"migrate_delta_ns"`
	MigrateDeltaNegative bool   `json:"migrate_delta_negative,omitempty"`
	VMMLatencyNs         int64  `json:"vmm_latency_ns,omitempty"`
}

// StageIndex maps a valid stage to its index in Migration.Stages.
func StageIndex(s schema.Stage) int { return int(s) - int(schema.StageMigration) }

// Stage returns the values recorded for stage s.
func (m *Migration) Stage(s schema.Stage) StageValues { return m.Stages[StageIndex(s)] }

// HasTimeData reports whether every time-data stage was recorded.
func (m *Migration) HasTimeData() bool {
	for _, s := range m.Stages {
		if !s.Present {
			return false
		}
	}
	return true
}

// Phase returns the timing of phase p and whether this side ran it.
func (m *Migration) Phase(p schema.Phase) (PhaseTiming, bool) {
	for _, t := range m.Phases {
		if t.Phase == p {
			return t, true
		}
	}
	return PhaseTiming{}, false
}

// PrecopyRound is one schema.EventPrecopyRound event.
type PrecopyRound struct {
	Phase      schema.Phase `json:"-"`
	Round      int64        `json:"round"`
	Pages      int64        `json:"pages"`
	ZeroPages  int64        `json:"zero_pages"`
	Bytes      int64        `json:"bytes"`
	DirtyPages int64        `json:"dirty_pages"`
	RoundNs    int64        `json:"round_ns"`
}

// ClockOffset is the destination's schema.EventClockOffset: its estimate
// of its wall clock minus the source's.
type ClockOffset struct {
	OffsetNs      int64 `json:"offset_ns"`
	ErrorNs       int64 `json:"error_ns"`
	RTTNs         int64 `json:"rtt_ns"`
	Samples       int64 `json:"samples"`
	SkewCorrected bool  `json:"skew_corrected"`
}

// Blackout is the guest's pause-to-resume time across both hosts.
type Blackout struct {
	Ns      int64 `json:"ns"`
	ErrorNs int64 `json:"error_ns"`
}

// Continuity is the destination's check of the guest at handoff
// (schema.EventContinuity). The pointer fields are nil when not recorded.
type Continuity struct {
	TSCMonotonic      bool   `json:"tsc_monotonic"`
	TSCSamples        int64  `json:"tsc_samples"`
	ErrorNs           *int64 `json:"error_ns,omitempty"`
	TSCOffsetHonoured *bool  `json:"tsc_offset_honoured,omitempty"`
	MemoryChecksumOK  bool   `json:"memory_checksum_ok"`
	// MemoryUnchecked is set when the source skipped the memory checksum
	// (--skip-memory-checksum): MemoryChecksumOK then means nothing.
	MemoryUnchecked    bool `json:"memory_unchecked,omitempty"`
	DeviceStateMatches bool `json:"device_state_ok"`
}
