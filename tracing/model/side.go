package model

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/migtrace/migtrace/tracing/schema"
)

// Side is one side (source or destination) of one migration. Filled by
// the side that ran it, or rebuilt from its trace by spancodec: fields the
// trace did not carry keep their zero value, and the pointer fields are
// nil when the event was absent.
type Side struct {
	ID       string      `json:"id"`
	Role     schema.Role `json:"role"`
	TraceID  string      `json:"trace_id,omitempty"`
	Instance string      `json:"instance,omitempty"`
	// Peer is the other side's network address; PeerName its instance
	// name, once the ServerState phase exchanged it.
	Peer            string `json:"peer,omitempty"`
	PeerName        string `json:"peer_name,omitempty"`
	Backend         string `json:"backend,omitempty"`
	MemoryBytes     int64  `json:"memory_bytes,omitempty"`
	ProtocolVersion int64  `json:"protocol_version,omitempty"`
	// Result is schema.ResultSuccess, schema.ResultFailure,
	// schema.ResultCancelled, or "" while the migration runs or when the
	// side's root span was not in the input (e.g. the process died).
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
	// ErrorPhase is the phase that failed, or in which the migration was
	// cancelled.
	ErrorPhase string `json:"error_phase,omitempty"`
	// CancelledBy says who cancelled a cancelled migration: the server
	// that took the request and the API client's address or "cli".
	CancelledBy string    `json:"cancelled_by,omitempty"`
	StartTime   time.Time `json:"start_time"`
	EndTime     time.Time `json:"end_time"`
	// BytesSent and BytesReceived count the migration stream, framing
	// included.
	BytesSent     int64 `json:"bytes_sent,omitempty"`
	BytesReceived int64 `json:"bytes_received,omitempty"`
	// DowntimeNs is the source's pause-to-handoff time (source only).
	DowntimeNs int64 `json:"downtime_ns,omitempty"`

	// Phases holds the phases this side ran, in protocol order.
	Phases []PhaseTiming `json:"phases"`
	// Stages holds the destination's time-data stages, indexed by
	// StageIndex; a stage not recorded has Present == false.
	Stages        [3]StageValues `json:"stages"`
	PrecopyRounds []PrecopyRound `json:"precopy_rounds,omitempty"`
	// ThrottleSteps are auto-converge's steps of the guest's throttle, in
	// order (source only).
	ThrottleSteps []ThrottleStep `json:"throttle_steps,omitempty"`
	ClockOffset   *ClockOffset   `json:"clock_offset,omitempty"`
	Blackout      *Blackout      `json:"blackout,omitempty"`
	Continuity    *Continuity    `json:"continuity,omitempty"`
	// MemoryLate is, on a destination, the comparison of all guest memory
	// with the source's made after the handoff (verification "sampled" or
	// "after"); nil when none was due.
	MemoryLate *MemoryLate `json:"memory_late,omitempty"`

	// SourcePhases and SourceDowntimeNs are, on a destination, the
	// source's own timings as the source sent them in its Finish message,
	// so that a destination-only trace still holds both hosts.
	SourcePhases     []PhaseTiming `json:"source_phases,omitempty"`
	SourceDowntimeNs int64         `json:"source_downtime_ns,omitempty"`
	// ReportedByPeer marks a source side rebuilt from what the destination
	// recorded of it (see PeerSource), for input that lacks the source's
	// own spans.
	ReportedByPeer bool `json:"reported_by_peer,omitempty"`

	// Handoff is the side's last handoff state (see migrate.HandoffState:
	// "committed", "completed", "resumed", "aborted", ...), "" when the
	// migration never reached the handoff. HandoffSettledBy says how the
	// side learnt the outcome when the stream did not tell it: "peer" (it
	// asked the peer's record) or "operator" (migtrace resolve).
	Handoff          string `json:"handoff,omitempty"`
	HandoffSettledBy string `json:"handoff_settled_by,omitempty"`

	// Settings are the settings the migration started with, as the source
	// applies them (both sides record the same values); nil when not
	// recorded. SettingsChanges are the changes made while it ran, in
	// order: the settings in force at any moment are Settings with the
	// changes made before it applied.
	Settings        *Settings       `json:"settings,omitempty"`
	SettingsChanges []SettingChange `json:"settings_changes,omitempty"`

	// TimeRead is, on a source, the time data it read from its VMM and
	// sent in its TimeData phase, recorded on its own span so that the
	// destination's Migration stage can be checked against it.
	TimeRead *TimeRead `json:"time_read,omitempty"`

	// The rest is what the decoder found wrong with the trace itself: a
	// side migrate returns, and one decoded from a sound trace, leaves it
	// empty.

	// RootMissing is set when the input holds spans of this side but not
	// its root span: the input was cut short, or the process died before
	// exporting it.
	RootMissing bool `json:"root_missing,omitempty"`
	// Conflicts are spans of this side the decoder set aside rather than
	// choose between: a span id seen again with other contents, or a
	// second span for a phase (or root) it already had.
	Conflicts []SpanConflict `json:"conflicts,omitempty"`
	// ForeignSpans are spans folded into this side whose trace id is not
	// its root span's (with no root, not the one most of its spans carry).
	ForeignSpans []ForeignSpan `json:"foreign_spans,omitempty"`
	// Unrecorded lists the attributes the side's spans and events should
	// carry but did not. The fields they would fill keep their zero
	// values, which then mean "not recorded", not 0 or false.
	Unrecorded []AttrRef `json:"unrecorded,omitempty"`
}

// Recorded reports whether the trace carried attribute r: it is not
// listed in Unrecorded. A side migrate returns records everything.
func (s *Side) Recorded(r AttrRef) bool {
	for _, u := range s.Unrecorded {
		if u == r {
			return false
		}
	}
	return true
}

// AttrRef names one attribute of one span or event of a side.
type AttrRef struct {
	// Span is the span's name: schema.SpanMigration or a phase's.
	Span string `json:"span"`
	// Event is the event's name, "" for the span's own attributes.
	Event string `json:"event,omitempty"`
	// Of tells apart events of one name on one span: the stage of a
	// time-data stage, the phase of a source phase, the index of a round.
	Of   string `json:"of,omitempty"`
	Attr string `json:"attribute"`
}

// String reads like "TimeData event migration.time_data.stage (kernel):
// migration.time.vmm_latency_ns".
func (r AttrRef) String() string {
	s := r.Span
	if r.Event != "" {
		s += " event " + r.Event
	}
	if r.Of != "" {
		s += " (" + r.Of + ")"
	}
	return s + ": " + r.Attr
}

// RootAttr refers to an attribute of a side's root span.
func RootAttr(attr string) AttrRef { return AttrRef{Span: schema.SpanMigration, Attr: attr} }

// PhaseAttr refers to an attribute of phase p's span.
func PhaseAttr(p schema.Phase, attr string) AttrRef {
	return AttrRef{Span: schema.PhaseSpanName(p), Attr: attr}
}

// EventAttr refers to an attribute of event name on phase p's span; of
// tells apart several events of that name (see AttrRef.Of).
func EventAttr(p schema.Phase, name, of, attr string) AttrRef {
	return AttrRef{Span: schema.PhaseSpanName(p), Event: name, Of: of, Attr: attr}
}

// StageAttr refers to an attribute of time-data stage st's event.
func StageAttr(st schema.Stage, attr string) AttrRef {
	return EventAttr(schema.PhaseTimeData, schema.EventTimeDataStage, st.String(), attr)
}

// ConflictKind says why the decoder set a span aside.
type ConflictKind string

const (
	// ConflictSpanID: the span id was seen before with other contents.
	ConflictSpanID ConflictKind = "span-id"
	// ConflictDuplicate: another span already recorded this phase (or
	// this side's root).
	ConflictDuplicate ConflictKind = "duplicate"
)

// SpanConflict is a span the decoder set aside.
type SpanConflict struct {
	SpanID string       `json:"span_id"`
	Span   string       `json:"span"`
	Kind   ConflictKind `json:"kind"`
}

// ForeignSpan is a span folded into a side whose trace id is not the
// side's.
type ForeignSpan struct {
	SpanID  string `json:"span_id"`
	Span    string `json:"span"`
	TraceID string `json:"trace_id"`
}

// TimeRead is the time data a source read from its VMM
// (schema.EventTimeDataRead).
type TimeRead struct {
	GuestFreq  uint64 `json:"guest_freq_hz"`
	GuestTSC   uint64 `json:"guest_tsc"`
	BootHrtime int64  `json:"boot_hrtime"`
	Hrtime     int64  `json:"hrtime"`
	// Wallclock is "SEC.NSEC", nine fractional digits.
	Wallclock string `json:"wallclock"`
}

// Verified reports whether the destination's checks all passed: at the
// handoff guest memory (unless the source skipped its checksum), device
// state and the guest's TSC ring, and the comparison of memory after the
// handoff when one was due.
func (s *Side) Verified() bool {
	c := s.Continuity
	return c != nil && c.TSCMonotonic && c.DeviceStateMatches && (c.MemoryUnchecked || c.MemoryChecksumOK) &&
		(s.MemoryLate == nil || s.MemoryLate.Result == schema.MemoryLateMatch)
}

// Failed reports whether the side ended in failure.
func (s *Side) Failed() bool { return s.Result == schema.ResultFailure }

// Cancelled reports whether the side was cancelled before the handoff.
func (s *Side) Cancelled() bool { return s.Result == schema.ResultCancelled }

// Phase returns the timing of phase p and whether this side ran it.
func (s *Side) Phase(p schema.Phase) (PhaseTiming, bool) {
	for _, t := range s.Phases {
		if t.Phase == p {
			return t, true
		}
	}
	return PhaseTiming{}, false
}

// Stage returns the values recorded for stage s.
func (s *Side) Stage(st schema.Stage) StageValues { return s.Stages[StageIndex(st)] }

// HasTimeData reports whether every time-data stage was recorded.
func (s *Side) HasTimeData() bool {
	for _, st := range s.Stages {
		if !st.Present {
			return false
		}
	}
	return true
}

// PreCopyRounds is the number of rounds sent before the pause.
func (s *Side) PreCopyRounds() int64 {
	p, _ := s.Phase(schema.PhaseRamPushPrePause)
	return p.Rounds
}

// PeerSource rebuilds the source side of destination dst from the
// timings the source sent it. own is the source's own root-only side, if
// one was read (its identity fields are kept).
func PeerSource(dst *Side, own *Side) Side {
	m := Side{ID: dst.ID, Role: schema.RoleSource, TraceID: dst.TraceID,
		StartTime: dst.StartTime, Result: dst.Result, Peer: dst.Instance}
	if own != nil && own.Result != "" {
		m = *own
	}
	m.Phases = dst.SourcePhases
	if m.DowntimeNs == 0 {
		m.DowntimeNs = dst.SourceDowntimeNs
	}
	m.ReportedByPeer = true
	return m
}

// Settings are one migration's tunable settings (schema.AttrSetting*).
// Zero MaxBandwidth means no cap.
type Settings struct {
	MaxBandwidth        int64 `json:"max_bandwidth"` // bytes per second
	DowntimeTargetNs    int64 `json:"downtime_target_ns"`
	MaxRounds           int64 `json:"max_rounds"`
	AutoConverge        bool  `json:"auto_converge"`
	ClockSkewCorrection bool  `json:"clock_skew_correction"`
	SkipMemoryChecksum  bool  `json:"skip_memory_checksum"`
}

// SettingChange is one setting changed while the migration ran
// (schema.EventSettingChanged). Old and New are int64 whatever the
// setting: bytes per second, nanoseconds, a count, or 0/1 for a flag.
type SettingChange struct {
	Time time.Time `json:"time"`
	// Setting is a schema.Setting* name, e.g. "max_bandwidth".
	Setting string `json:"setting"`
	Old     int64  `json:"old"`
	New     int64  `json:"new"`
	// Phase is the phase the side was in when the change took effect.
	Phase schema.Phase `json:"phase,omitempty"`
	// By says who asked, as for Side.CancelledBy.
	By string `json:"by,omitempty"`
}

// Value returns the value of setting name (a schema.Setting*), as
// SettingChange records it, and whether name is a setting.
func (s Settings) Value(name string) (int64, bool) {
	b := func(v bool) int64 {
		if v {
			return 1
		}
		return 0
	}
	switch name {
	case schema.SettingMaxBandwidth:
		return s.MaxBandwidth, true
	case schema.SettingDowntimeTarget:
		return s.DowntimeTargetNs, true
	case schema.SettingMaxRounds:
		return s.MaxRounds, true
	case schema.SettingAutoConverge:
		return b(s.AutoConverge), true
	case schema.SettingClockSkewCorrection:
		return b(s.ClockSkewCorrection), true
	case schema.SettingSkipMemoryChecksum:
		return b(s.SkipMemoryChecksum), true
	}
	return 0, false
}

// PhaseTiming is one phase as one side ran it. BeginNs and EndNs are that
// host's monotonic clock, so durations match DTrace's `timestamp`
// arithmetic; Start and End are its span's wall-clock times, which place
// it inside the side's root span (zero where no span recorded them, as
// for the phases a source reports to its destination).
type PhaseTiming struct {
	Phase     schema.Phase `json:"phase"`
	BeginNs   int64        `json:"begin_ns"`
	EndNs     int64        `json:"end_ns"`
	Start     time.Time    `json:"start_time,omitzero"`
	End       time.Time    `json:"end_time,omitzero"`
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

// Duration is DurationNs as a time.Duration.
func (p PhaseTiming) Duration() time.Duration { return time.Duration(p.DurationNs()) }

// IsRAM reports whether p moves guest RAM, so its span carries the RAM
// counts.
func IsRAM(p schema.Phase) bool {
	return p == schema.PhaseRamPushPrePause || p == schema.PhaseRamPushPostPause || p == schema.PhaseRamPull
}

// StageValues is one time-data stage (schema.EventTimeDataStage).
type StageValues struct {
	Present    bool   `json:"present"`
	GuestFreq  uint64 `json:"guest_freq_hz"`
	GuestTSC   uint64 `json:"guest_tsc"`
	BootHrtime int64  `json:"boot_hrtime"`
	Hrtime     int64  `json:"hrtime"`
	// Wallclock is "SEC.NSEC", nine fractional digits.
	Wallclock string `json:"wallclock,omitempty"`
	// DurationNs: Migration, the wall-clock delta; userspace, receipt to
	// the VMM write; kernel, the VMM write itself.
	DurationNs int64 `json:"duration_ns"`
	// GuestTSCDelta and BootHrtimeDelta are this stage minus the previous.
	GuestTSCDelta        uint64 `json:"guest_tsc_delta"`
	BootHrtimeDelta      int64  `json:"boot_hrtime_delta"`
	GuestUptimeNs        int64  `json:"guest_uptime_ns"`
	MigrateDeltaNs       int64  `json:"migrate_delta_ns"`
	MigrateDeltaNegative bool   `json:"migrate_delta_negative,omitempty"`
	// VMMLatencyNs is the latency the VMM corrected for (kernel stage).
	VMMLatencyNs int64 `json:"vmm_latency_ns,omitempty"`
}

// StageIndex maps a valid stage to its index in Side.Stages.
func StageIndex(s schema.Stage) int { return int(s) - int(schema.StageMigration) }

// PrecopyRound is one RAM push round (schema.EventPrecopyRound).
type PrecopyRound struct {
	Phase      schema.Phase `json:"phase"`
	Round      int64        `json:"round"`
	Pages      int64        `json:"pages"`
	ZeroPages  int64        `json:"zero_pages"`
	Bytes      int64        `json:"bytes"`
	WireBytes  int64        `json:"wire_bytes"`
	DirtyPages int64        `json:"dirty_pages"`
	RoundNs    int64        `json:"round_ns"`
}

// ThrottleStep is one step of auto-converge (schema.EventThrottle): after
// pre-copy round Round the source throttled the guest's vCPUs to Percent
// % of their time asleep, so the rounds after it ran throttled. The
// throttle is lifted once the guest is paused, or when the migration
// fails before.
type ThrottleStep struct {
	Round   int64 `json:"round"`
	Percent int64 `json:"percent"`
}

// ClockOffset is the destination's estimate of its wall clock minus the
// source's (schema.EventClockOffset). Samples == 0 means no usable sample
// was taken: the other fields are then meaningless.
type ClockOffset struct {
	OffsetNs      int64 `json:"offset_ns"`
	ErrorNs       int64 `json:"error_ns"`
	RTTNs         int64 `json:"rtt_ns"`
	Samples       int64 `json:"samples"`
	SkewCorrected bool  `json:"skew_corrected"`
}

// Known reports whether an estimate was made.
func (c *ClockOffset) Known() bool { return c != nil && c.Samples > 0 }

// Blackout is the guest's pause-to-resume time across both hosts.
// ErrorNs is nil when no clock-offset estimate bounds it: the figure then
// assumes the hosts' wall clocks agree.
type Blackout struct {
	Ns      int64  `json:"ns"`
	ErrorNs *int64 `json:"error_ns,omitempty"`
}

// Continuity is the destination's check of the guest at handoff
// (schema.EventContinuity). The pointer fields are nil when not recorded.
type Continuity struct {
	TSCMonotonic bool  `json:"tsc_monotonic"`
	TSCSamples   int64 `json:"tsc_samples"`
	// TSCLast is the newest guest TSC in the ring at the check.
	TSCLast uint64 `json:"tsc_last,omitempty"`
	// ErrorNs is the resumed guest's median TSC error against the wall
	// clock over ErrorSamples samples, where the backend can measure it.
	ErrorNs           *int64 `json:"error_ns,omitempty"`
	ErrorSamples      int64  `json:"error_samples,omitempty"`
	TSCOffsetHonoured *bool  `json:"tsc_offset_honoured,omitempty"`
	MemoryChecksumOK  bool   `json:"memory_checksum_ok"`
	// MemoryUnchecked is set when no memory was compared at the handoff
	// (verification "after" or "off"): MemoryChecksumOK then means nothing.
	MemoryUnchecked    bool `json:"memory_unchecked,omitempty"`
	DeviceStateMatches bool `json:"device_state_ok"`
	// MemoryVerify is how memory was verified, a schema.MemoryVerify*
	// value; "" in traces from before it was recorded. With "sampled",
	// MemoryChecksumOK is the verdict on MemorySamplePages pages.
	MemoryVerify      string `json:"memory_verify,omitempty"`
	MemorySamplePages int64  `json:"memory_sample_pages,omitempty"`
}

// MemoryLate is the destination's comparison of all guest memory, as it
// received it, with the source's frozen copy, made after the handoff
// while the guest already ran (schema.AttrMemoryLateResult). A mismatch
// cannot be undone, only reported.
type MemoryLate struct {
	// Result is a schema.MemoryLate* value.
	Result string `json:"result"`
	// DurationNs is the destination's resume to the verdict.
	DurationNs int64 `json:"duration_ns"`
	// Error says why the comparison could not be made (Result
	// "unavailable").
	Error string `json:"error,omitempty"`
}

// SortByStart orders sides by start time, then id, source before
// destination, so output does not depend on input order.
func SortByStart(ms []Side) {
	slices.SortFunc(ms, func(a, b Side) int {
		if c := a.StartTime.Compare(b.StartTime); c != 0 {
			return c
		}
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return int(a.Role) - int(b.Role)
	})
}

// FormatSetting renders a setting's value (as model.SettingChange holds
// it) for people: a rate, a duration, a count or on/off.
func FormatSetting(name string, v int64) string {
	switch name {
	case schema.SettingMaxBandwidth:
		if v == 0 {
			return "no cap"
		}
		return formatRate(v)
	case schema.SettingDowntimeTarget:
		return time.Duration(v).String()
	case schema.SettingAutoConverge, schema.SettingClockSkewCorrection, schema.SettingSkipMemoryChecksum:
		if v != 0 {
			return "on"
		}
		return "off"
	}
	return strconv.FormatInt(v, 10)
}

// formatRate is bytes per second with an IEC unit, exact where it can be.
func formatRate(v int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.mult {
			if v%u.mult == 0 {
				return strconv.FormatInt(v/u.mult, 10) + " " + u.suffix + "/s"
			}
			return strconv.FormatFloat(float64(v)/float64(u.mult), 'f', 1, 64) + " " + u.suffix + "/s"
		}
	}
	return strconv.FormatInt(v, 10) + " B/s"
}
