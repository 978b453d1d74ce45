package schema

// Instrumentation scope under which migtrace creates its tracers and meters.
const ScopeName = "github.com/migtrace/migtrace"

// Span names. Each side of a migration has one SpanMigration span; each
// phase it runs is a child span named after the phase (Phase.String), so
// the span names stay low-cardinality while reading like the D scripts.
const (
	SpanMigration = "migration"
)

// PhaseSpanName returns the name of the span that covers phase p.
func PhaseSpanName(p Phase) string { return p.String() }

// Span event names.
const (
	// EventTimeDataStage: one per Stage, on the destination's TimeData span.
	EventTimeDataStage = "migration.time_data.stage"
	// EventTimeDataRead: the time data the source read from its VMM, on
	// the source's TimeData span, so the destination's Migration stage
	// can be checked against what was actually read.
	EventTimeDataRead = "migration.time_data.read"
	// EventClockOffset: the destination's estimate of the wall-clock offset
	// between the hosts, on its Sync span.
	EventClockOffset = "migration.clock_offset"
	// EventPrecopyRound: one per RAM push round, on the RAM push spans.
	EventPrecopyRound = "migration.ram.round"
	// EventThrottle: one per step of auto-converge's throttle of the
	// guest's vCPUs, on the source's RamPushPrePause span.
	EventThrottle = "migration.ram.throttle"
	// EventBlackout: the guest's pause-to-resume time across both hosts, on
	// the destination's Finish span.
	EventBlackout = "migration.blackout"
	// EventContinuity: the destination's check of the guest's own TSC ring
	// at handoff, on its Finish span.
	EventContinuity = "migration.guest.continuity"
	// EventSettingChanged: one setting changed while the migration ran, on
	// the root span, with AttrSettingName, AttrSettingOld, AttrSettingNew,
	// AttrPhase and AttrSettingBy.
	EventSettingChanged = "migration.settings.changed"
)

// Attribute keys. Unsigned 64-bit values (guest TSC, TSC deltas, guest
// frequency) do not fit OTel's int64 attributes; they are recorded as
// base-10 strings, which is lossless and readable in Jaeger. Signed values
// (hrtimes, boot_hrtime, durations in ns) are int64 attributes.
const (
	AttrMigrationID     = "migration.id"          // string, UUID shared by both sides
	AttrRole            = "migration.role"        // string, Role.String
	AttrPhase           = "migration.phase"       // string, Phase.String
	AttrResult          = "migration.result"      // string, ResultSuccess or ResultFailure
	AttrError           = "migration.error"       // string, error message
	AttrErrorPhase      = "migration.error.phase" // string, phase that failed
	AttrPeer            = "migration.peer"        // string, the other side's address
	AttrPeerName        = "migration.peer.name"   // string, the other side's instance name
	AttrInstance        = "migration.instance"    // string, instance name
	AttrBackend         = "migration.vmm.backend" // string, "sim" or "kvm"
	AttrMemoryBytes     = "migration.vmm.memory_bytes"
	AttrProtocolVersion = "migration.protocol.version" // int

	// Phase spans carry the host's monotonic clock at begin and end so that
	// tables rebuilt from traces match DTrace's `timestamp` arithmetic.
	AttrPhaseBeginNs = "migration.phase.begin_ns" // int64, host monotonic ns
	AttrPhaseEndNs   = "migration.phase.end_ns"   // int64, host monotonic ns

	AttrRAMBytes      = "migration.ram.bytes"       // int64, page payload bytes moved
	AttrRAMWireBytes  = "migration.ram.wire_bytes"  // int64, bytes on the wire
	AttrRAMPages      = "migration.ram.pages"       // int64, pages moved (zero pages included)
	AttrRAMZeroPages  = "migration.ram.zero_pages"  // int64, pages sent as a zero marker
	AttrRAMPaused     = "migration.ram.paused"      // bool, VM paused during the push
	AttrRAMRounds     = "migration.ram.rounds"      // int64, pre-copy rounds in the phase
	AttrRAMRound      = "migration.ram.round"       // int64, round index (event)
	AttrRAMDirtyPages = "migration.ram.dirty_pages" // int64, pages still dirty after a round
	AttrRAMRoundNs    = "migration.ram.round_ns"    // int64, round duration

	AttrThrottlePercent = "migration.ram.throttle_percent" // int64, % of vCPU time the guest sleeps

	AttrDowntimeNs      = "migration.downtime_ns"           // int64, source: pause to handoff
	AttrBytesSent       = "migration.stream.bytes_sent"     // int64, bytes this side wrote to the stream
	AttrBytesReceived   = "migration.stream.bytes_received" // int64, bytes this side read from the stream
	AttrBlackoutNs      = "migration.blackout_ns"           // int64, pause on source to resume on destination
	AttrBlackoutErrorNs = "migration.blackout.error_ns"     // int64, bound on AttrBlackoutNs's error

	AttrTimeStage            = "migration.time.stage"                  // string, Stage.String
	AttrGuestFreq            = "migration.time.guest_freq_hz"          // string (uint64)
	AttrGuestTSC             = "migration.time.guest_tsc"              // string (uint64)
	AttrBootHrtime           = "migration.time.boot_hrtime"            // int64 ns
	AttrHrtime               = "migration.time.hrtime"                 // int64 ns, host hrtime of the data
	AttrWallclock            = "migration.time.wallclock"              // string "SEC.NSEC"
	AttrStageDurationNs      = "migration.time.duration_ns"            // int64 ns
	AttrGuestTSCDelta        = "migration.time.guest_tsc_delta"        // string (uint64), vs previous stage
	AttrBootHrtimeDelta      = "migration.time.boot_hrtime_delta"      // int64 ns, vs previous stage
	AttrGuestUptimeNs        = "migration.time.guest_uptime_ns"        // int64 ns
	AttrMigrateDeltaNs       = "migration.time.migrate_delta_ns"       // int64 ns, after clamping
	AttrMigrateDeltaNegative = "migration.time.migrate_delta_negative" // bool
	AttrVMMLatencyNs         = "migration.time.vmm_latency_ns"         // int64 ns, kernel stage

	AttrClockOffsetNs      = "migration.clock.offset_ns"       // int64, destination minus source wall clock
	AttrClockOffsetErrorNs = "migration.clock.offset_error_ns" // int64, error bound (half the best RTT)
	AttrClockRTTNs         = "migration.clock.rtt_ns"          // int64, RTT of the kept sample
	AttrClockSamples       = "migration.clock.samples"         // int64
	AttrClockSkewCorrected = "migration.clock.skew_corrected"  // bool, offset applied to the delta

	AttrTSCMonotonic       = "migration.guest.tsc_monotonic"       // bool
	AttrTSCSamples         = "migration.guest.tsc_samples"         // int64
	AttrTSCLast            = "migration.guest.tsc_last"            // string (uint64), newest ring sample
	AttrContinuityErrorNs  = "migration.guest.continuity_error_ns" // int64, median, when measurable
	AttrContinuitySamples  = "migration.guest.continuity_samples"  // int64, samples behind AttrContinuityErrorNs
	AttrTSCOffsetHonoured  = "migration.vmm.tsc_offset_honoured"   // bool
	AttrMemoryChecksumOK   = "migration.guest.memory_checksum_ok"  // bool
	AttrDeviceStateMatches = "migration.guest.device_state_ok"     // bool

	// How guest memory was verified (a MemoryVerify* value) and, for a
	// sample, how many pages it compared at the handoff: on the
	// continuity event.
	AttrMemoryVerify      = "migration.guest.memory_verify"       // string, MemoryVerify*
	AttrMemorySamplePages = "migration.guest.memory_sample_pages" // int64
	// The comparison of all guest memory made after the handoff, on the
	// destination's migration span: its result (a MemoryLate* value), how
	// long after the resume it came, and why it could not be made.
	AttrMemoryLateResult = "migration.guest.memory_late.result"      // string, MemoryLate*
	AttrMemoryLateNs     = "migration.guest.memory_late.duration_ns" // int64, resume to verdict
	AttrMemoryLateError  = "migration.guest.memory_late.error"       // string, when unavailable
)

// Values of AttrMemoryVerify (docs/protocol.md §5 states what each
// detects and when).
const (
	MemoryVerifyFull    = "full"    // all memory compared before the handoff
	MemoryVerifySampled = "sampled" // a sample before the handoff, all of it after
	MemoryVerifyAfter   = "after"   // all memory compared after the handoff
	MemoryVerifyOff     = "off"     // not compared
)

// Values of AttrMemoryLateResult.
const (
	MemoryLateMatch       = "match"       // the guest's memory at the handoff was the source's
	MemoryLateMismatch    = "mismatch"    // it was not: the guest runs on corrupt memory
	MemoryLateUnavailable = "unavailable" // the source's digest never came
)

const (
	// A migration's settings, on the root span (the ones it started with)
	// and, by name, on EventSettingChanged.
	AttrSettingMaxBandwidth        = "migration.settings.max_bandwidth"         // int64, bytes/s, 0 = no cap
	AttrSettingDowntimeTargetNs    = "migration.settings.downtime_target_ns"    // int64, ns
	AttrSettingMaxRounds           = "migration.settings.max_rounds"            // int64
	AttrSettingAutoConverge        = "migration.settings.auto_converge"         // bool
	AttrSettingClockSkewCorrection = "migration.settings.clock_skew_correction" // bool
	AttrSettingSkipMemoryChecksum  = "migration.settings.skip_memory_checksum"  // bool
	AttrSettingName                = "migration.settings.name"                  // string, a Setting* value
	AttrSettingOld                 = "migration.settings.old"                   // int64, the value before
	AttrSettingNew                 = "migration.settings.new"                   // int64, the value after
	AttrSettingBy                  = "migration.settings.by"                    // string, who changed it
	AttrCancelledBy                = "migration.cancelled_by"                   // string, who cancelled
)

// Names of the settings, as AttrSettingName, the API's JSON keys and
// migrate-set's flags (with - for _) spell them.
const (
	SettingMaxBandwidth        = "max_bandwidth"
	SettingDowntimeTarget      = "downtime_target_ns"
	SettingMaxRounds           = "max_rounds"
	SettingAutoConverge        = "auto_converge"
	SettingClockSkewCorrection = "clock_skew_correction"
	SettingSkipMemoryChecksum  = "skip_memory_checksum"
)

// Values of AttrResult.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
	// ResultCancelled: an operator cancelled the migration before the
	// handoff; the guest runs on the source, as after a failure.
	ResultCancelled = "cancelled"
)

// Metric names and units (OTel conventions: seconds for durations, UCUM
// units, no _total suffix; the Prometheus exporter adds suffixes).
const (
	MetricPhaseDuration    = "migration.phase.duration"     // histogram, s; attrs role, phase
	MetricRAMTransferred   = "migration.ram.transferred"    // counter, By; attrs role, paused
	MetricMigrations       = "migration.migrations"         // counter, {migration}; attrs role, result
	MetricDowntime         = "migration.downtime"           // histogram, s; source pause to handoff
	MetricBlackout         = "migration.blackout"           // histogram, s; across both hosts
	MetricPrecopyRounds    = "migration.precopy.rounds"     // histogram, {round}
	MetricTSCAdjustment    = "migration.tsc.adjustment"     // histogram, {tick}; attr stage
	MetricClockOffset      = "migration.clock.offset"       // gauge, s
	MetricClockOffsetError = "migration.clock.offset_error" // gauge, s
	MetricThrottle         = "migration.throttle"           // gauge, %; attr role
	MetricMemoryLate       = "migration.memory.late_checks" // counter, {check}; attr result

	UnitSeconds    = "s"
	UnitBytes      = "By"
	UnitMigrations = "{migration}"
	UnitRounds     = "{round}"
	UnitTicks      = "{tick}"
	UnitPercent    = "%"
	UnitChecks     = "{check}"
)

// DurationBuckets are the explicit histogram boundaries, in seconds, for
// phase durations, downtime and blackout: 10 µs to 100 s, 1-2.5-5 steps.
var DurationBuckets = []float64{
	0.00001, 0.000025, 0.00005,
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5,
	10, 25, 50,
	100,
}

// RoundBuckets are the boundaries for pre-copy round counts.
var RoundBuckets = []float64{1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30}

// TickBuckets are the boundaries for TSC adjustments, in guest ticks
// (about 1 µs to 100 s at a few GHz).
var TickBuckets = []float64{1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12}
