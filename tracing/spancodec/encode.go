package spancodec

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Uint64 encodes an unsigned 64-bit value as a base-10 string attribute.
// OTel attributes have no uint64 and guest TSC values pass 2^63, so a
// string is the lossless choice.
func Uint64(key string, v uint64) attribute.KeyValue {
	return attribute.String(key, strconv.FormatUint(v, 10))
}

// RootStartAttributes are the attributes a side's root span starts with:
// its identity, and what it knows of its VM and peer at the start.
func RootStartAttributes(s *model.Side) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String(schema.AttrMigrationID, s.ID),
		attribute.String(schema.AttrRole, s.Role.String()),
		attribute.String(schema.AttrInstance, s.Instance),
	}
	if s.Backend != "" {
		attrs = append(attrs, attribute.String(schema.AttrBackend, s.Backend))
	}
	if s.MemoryBytes != 0 {
		attrs = append(attrs, attribute.Int64(schema.AttrMemoryBytes, s.MemoryBytes))
	}
	if s.Peer != "" {
		attrs = append(attrs, attribute.String(schema.AttrPeer, s.Peer))
	}
	if s.Settings != nil {
		attrs = append(attrs, SettingsAttributes(*s.Settings)...)
	}
	return attrs
}

// SettingsAttributes are the root span's record of the settings a
// migration started with.
func SettingsAttributes(st model.Settings) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int64(schema.AttrSettingMaxBandwidth, st.MaxBandwidth),
		attribute.Int64(schema.AttrSettingDowntimeTargetNs, st.DowntimeTargetNs),
		attribute.Int64(schema.AttrSettingMaxRounds, st.MaxRounds),
		attribute.Bool(schema.AttrSettingAutoConverge, st.AutoConverge),
		attribute.Bool(schema.AttrSettingClockSkewCorrection, st.ClockSkewCorrection),
		attribute.Bool(schema.AttrSettingSkipMemoryChecksum, st.SkipMemoryChecksum),
	}
}

// SettingChangeAttributes are the attributes of a
// schema.EventSettingChanged, which sits on the root span.
func SettingChangeAttributes(c model.SettingChange) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String(schema.AttrSettingName, c.Setting),
		attribute.Int64(schema.AttrSettingOld, c.Old),
		attribute.Int64(schema.AttrSettingNew, c.New),
	}
	if c.Phase.Valid() {
		attrs = append(attrs, attribute.String(schema.AttrPhase, c.Phase.String()))
	}
	if c.By != "" {
		attrs = append(attrs, attribute.String(schema.AttrSettingBy, c.By))
	}
	return attrs
}

// RootEndAttributes are the attributes set on a side's root span when it
// ends: everything learnt while it ran, and the outcome. Setting them
// again over RootStartAttributes is harmless: later values win.
func RootEndAttributes(s *model.Side) []attribute.KeyValue {
	attrs := RootStartAttributes(s)
	if s.PeerName != "" {
		attrs = append(attrs, attribute.String(schema.AttrPeerName, s.PeerName))
	}
	if s.ProtocolVersion != 0 {
		attrs = append(attrs, attribute.Int64(schema.AttrProtocolVersion, s.ProtocolVersion))
	}
	attrs = append(attrs,
		attribute.Int64(schema.AttrBytesSent, s.BytesSent),
		attribute.Int64(schema.AttrBytesReceived, s.BytesReceived),
	)
	if s.Role == schema.RoleSource && s.DowntimeNs != 0 {
		attrs = append(attrs, attribute.Int64(schema.AttrDowntimeNs, s.DowntimeNs))
	}
	if s.SourceDowntimeNs != 0 {
		attrs = append(attrs, attribute.Int64(schema.AttrSourceDowntimeNs, s.SourceDowntimeNs))
	}
	if s.Handoff != "" {
		attrs = append(attrs, attribute.String(schema.AttrHandoffState, s.Handoff))
	}
	if s.HandoffSettledBy != "" {
		attrs = append(attrs, attribute.String(schema.AttrHandoffSettledBy, s.HandoffSettledBy))
	}
	if s.Blackout != nil {
		attrs = append(attrs, blackoutAttributes(*s.Blackout)...)
	}
	if s.MemoryLate != nil {
		attrs = append(attrs, MemoryLateAttributes(*s.MemoryLate)...)
	}
	if s.Error != "" {
		attrs = append(attrs, attribute.String(schema.AttrError, s.Error))
	}
	if s.ErrorPhase != "" {
		attrs = append(attrs, attribute.String(schema.AttrErrorPhase, s.ErrorPhase))
	}
	if s.CancelledBy != "" {
		attrs = append(attrs, attribute.String(schema.AttrCancelledBy, s.CancelledBy))
	}
	if s.Result != "" {
		attrs = append(attrs, attribute.String(schema.AttrResult, s.Result))
	}
	return attrs
}

// PhaseStartAttributes are the attributes a phase span starts with: the
// migration, the side, the phase and the host's monotonic clock at begin.
func PhaseStartAttributes(id string, r schema.Role, p schema.Phase, beginNs int64) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String(schema.AttrMigrationID, id),
		attribute.String(schema.AttrRole, r.String()),
		attribute.String(schema.AttrPhase, p.String()),
		attribute.Int64(schema.AttrPhaseBeginNs, beginNs),
	}
}

// PhaseEndAttributes are the attributes set on a phase span when it ends:
// the monotonic clock at end, the RAM counts of a RAM phase, and the error
// of a failed one.
func PhaseEndAttributes(p model.PhaseTiming) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.Int64(schema.AttrPhaseEndNs, p.EndNs)}
	if model.IsRAM(p.Phase) {
		attrs = append(attrs,
			attribute.Int64(schema.AttrRAMBytes, p.Bytes),
			attribute.Int64(schema.AttrRAMPages, p.Pages),
			attribute.Int64(schema.AttrRAMZeroPages, p.ZeroPages),
			attribute.Int64(schema.AttrRAMRounds, p.Rounds),
			attribute.Bool(schema.AttrRAMPaused, p.Paused),
		)
	}
	if p.Error != "" {
		attrs = append(attrs, attribute.String(schema.AttrError, p.Error))
	}
	return attrs
}

// EventPhase is the phase whose span carries events named name.
// schema.EventPrecopyRound is the exception: it sits on the RAM push span
// of its round (PrecopyRound.Phase).
func EventPhase(name string) schema.Phase {
	switch name {
	case schema.EventClockOffset:
		return schema.PhaseSync
	case schema.EventThrottle:
		return schema.PhaseRamPushPrePause
	case schema.EventTimeDataStage, schema.EventTimeDataRead:
		return schema.PhaseTimeData
	case schema.EventSourcePhase, schema.EventBlackout, schema.EventContinuity:
		return schema.PhaseFinish
	}
	return 0
}

// StageAttributes are the attributes of one schema.EventTimeDataStage.
func StageAttributes(st schema.Stage, v model.StageValues) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 13)
	attrs = append(attrs,
		attribute.String(schema.AttrTimeStage, st.String()),
		Uint64(schema.AttrGuestFreq, v.GuestFreq),
		Uint64(schema.AttrGuestTSC, v.GuestTSC),
		attribute.Int64(schema.AttrBootHrtime, v.BootHrtime),
		attribute.Int64(schema.AttrHrtime, v.Hrtime),
	)
	if v.Wallclock != "" {
		attrs = append(attrs, attribute.String(schema.AttrWallclock, v.Wallclock))
	}
	attrs = append(attrs,
		attribute.Int64(schema.AttrStageDurationNs, v.DurationNs),
		Uint64(schema.AttrGuestTSCDelta, v.GuestTSCDelta),
		attribute.Int64(schema.AttrBootHrtimeDelta, v.BootHrtimeDelta),
		attribute.Int64(schema.AttrGuestUptimeNs, v.GuestUptimeNs),
		attribute.Int64(schema.AttrMigrateDeltaNs, v.MigrateDeltaNs),
		attribute.Bool(schema.AttrMigrateDeltaNegative, v.MigrateDeltaNegative),
	)
	if st == schema.StageKernel {
		attrs = append(attrs, attribute.Int64(schema.AttrVMMLatencyNs, v.VMMLatencyNs))
	}
	return attrs
}

// TimeReadAttributes are the attributes of a schema.EventTimeDataRead:
// the time data a source read from its VMM.
func TimeReadAttributes(t model.TimeRead) []attribute.KeyValue {
	return []attribute.KeyValue{
		Uint64(schema.AttrGuestFreq, t.GuestFreq),
		Uint64(schema.AttrGuestTSC, t.GuestTSC),
		attribute.Int64(schema.AttrBootHrtime, t.BootHrtime),
		attribute.Int64(schema.AttrHrtime, t.Hrtime),
		attribute.String(schema.AttrWallclock, t.Wallclock),
	}
}

// ClockOffsetAttributes are the attributes of a schema.EventClockOffset.
// An estimate without samples records only that no sample was usable.
func ClockOffsetAttributes(c model.ClockOffset) []attribute.KeyValue {
	if c.Samples == 0 {
		return []attribute.KeyValue{attribute.Int64(schema.AttrClockSamples, 0)}
	}
	return []attribute.KeyValue{
		attribute.Int64(schema.AttrClockOffsetNs, c.OffsetNs),
		attribute.Int64(schema.AttrClockOffsetErrorNs, c.ErrorNs),
		attribute.Int64(schema.AttrClockRTTNs, c.RTTNs),
		attribute.Int64(schema.AttrClockSamples, c.Samples),
		attribute.Bool(schema.AttrClockSkewCorrected, c.SkewCorrected),
	}
}

// RoundAttributes are the attributes of a schema.EventPrecopyRound.
func RoundAttributes(r model.PrecopyRound) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int64(schema.AttrRAMRound, r.Round),
		attribute.Int64(schema.AttrRAMPages, r.Pages),
		attribute.Int64(schema.AttrRAMZeroPages, r.ZeroPages),
		attribute.Int64(schema.AttrRAMBytes, r.Bytes),
		attribute.Int64(schema.AttrRAMWireBytes, r.WireBytes),
		attribute.Int64(schema.AttrRAMDirtyPages, r.DirtyPages),
		attribute.Int64(schema.AttrRAMRoundNs, r.RoundNs),
	}
}

// ThrottleAttributes are the attributes of a schema.EventThrottle.
func ThrottleAttributes(t model.ThrottleStep) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int64(schema.AttrRAMRound, t.Round),
		attribute.Int64(schema.AttrThrottlePercent, t.Percent),
	}
}

// SourcePhaseAttributes are the attributes of a schema.EventSourcePhase:
// one phase as the source reported it to the destination.
func SourcePhaseAttributes(p model.PhaseTiming) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String(schema.AttrPhase, p.Phase.String()),
		attribute.Int64(schema.AttrPhaseBeginNs, p.BeginNs),
		attribute.Int64(schema.AttrPhaseEndNs, p.EndNs),
		attribute.Int64(schema.AttrRAMBytes, p.Bytes),
		attribute.Int64(schema.AttrRAMPages, p.Pages),
	}
}

// BlackoutAttributes are the attributes of a schema.EventBlackout; the
// root span of the destination carries them too.
func BlackoutAttributes(b model.Blackout) []attribute.KeyValue { return blackoutAttributes(b) }

func blackoutAttributes(b model.Blackout) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.Int64(schema.AttrBlackoutNs, b.Ns)}
	if b.ErrorNs != nil {
		// Without a clock estimate the bound is unknown, and left out
		// rather than written as an exact 0.
		attrs = append(attrs, attribute.Int64(schema.AttrBlackoutErrorNs, *b.ErrorNs))
	}
	return attrs
}

// ContinuityAttributes are the attributes of a schema.EventContinuity.
func ContinuityAttributes(c model.Continuity) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.Bool(schema.AttrTSCMonotonic, c.TSCMonotonic),
		attribute.Int64(schema.AttrTSCSamples, c.TSCSamples),
		Uint64(schema.AttrTSCLast, c.TSCLast),
		attribute.Bool(schema.AttrDeviceStateMatches, c.DeviceStateMatches),
	}
	if !c.MemoryUnchecked {
		attrs = append(attrs, attribute.Bool(schema.AttrMemoryChecksumOK, c.MemoryChecksumOK))
	}
	if c.TSCOffsetHonoured != nil {
		attrs = append(attrs, attribute.Bool(schema.AttrTSCOffsetHonoured, *c.TSCOffsetHonoured))
	}
	if c.ErrorNs != nil {
		attrs = append(attrs,
			attribute.Int64(schema.AttrContinuityErrorNs, *c.ErrorNs),
			attribute.Int64(schema.AttrContinuitySamples, c.ErrorSamples))
	}
	if c.MemoryVerify != "" {
		attrs = append(attrs, attribute.String(schema.AttrMemoryVerify, c.MemoryVerify))
	}
	if c.MemorySamplePages != 0 {
		attrs = append(attrs, attribute.Int64(schema.AttrMemorySamplePages, c.MemorySamplePages))
	}
	return attrs
}

// MemoryLateAttributes are the attributes of the comparison of memory
// after the handoff, on the destination's root span.
func MemoryLateAttributes(l model.MemoryLate) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String(schema.AttrMemoryLateResult, l.Result),
		attribute.Int64(schema.AttrMemoryLateNs, l.DurationNs),
	}
	if l.Error != "" {
		attrs = append(attrs, attribute.String(schema.AttrMemoryLateError, l.Error))
	}
	return attrs
}

// Options shape the traces Traces builds.
type Options struct {
	// Wall maps a side's monotonic clock to wall-clock time for the span
	// timestamps. Nil places the first phase's begin at the side's
	// StartTime and keeps the monotonic offsets from there.
	Wall func(s *model.Side, monoNs int64) time.Time
	// Resource is added to each side's resource attributes.
	Resource []attribute.KeyValue
}

// Traces builds the OTLP trace data of finished sides: one resource (host
// process) per side, a root span and a span per phase, events on the span
// of their phase. Trace and span IDs derive from the migration id, the
// role and the phase, so building twice gives the same IDs and both sides
// of a migration share a trace. A destination's root is the source root's
// parent, as when the destination asks for the VM.
func Traces(opts Options, sides ...model.Side) ptrace.Traces {
	td := ptrace.NewTraces()
	for i := range sides {
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", "migtrace")
		if sides[i].Instance != "" {
			ra.PutStr("service.instance.id", sides[i].Instance)
		}
		putAll(ra, opts.Resource)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(schema.ScopeName)
		AppendSpans(ss.Spans(), &sides[i], opts)
	}
	return td
}

// AppendSpans appends side s's spans to ss, the phase spans first and the
// root last, the order a batch exporter writes them in.
func AppendSpans(ss ptrace.SpanSlice, s *model.Side, opts Options) {
	wall := opts.Wall
	if wall == nil {
		var base int64
		if len(s.Phases) > 0 {
			base = s.Phases[0].BeginNs
		}
		wall = func(s *model.Side, mono int64) time.Time { return s.StartTime.Add(time.Duration(mono - base)) }
	}
	ts := func(mono int64) pcommon.Timestamp { return pcommon.NewTimestampFromTime(wall(s, mono)) }
	traceID := TraceID(s)
	rootID := SpanID(s.ID, s.Role, 0)
	start := pcommon.NewTimestampFromTime(s.StartTime)
	end := start
	if !s.EndTime.IsZero() {
		end = pcommon.NewTimestampFromTime(s.EndTime)
	}
	// Wall times a phase recorded are kept; others are mapped from the
	// monotonic clock.
	wallTS := func(t time.Time, mono int64) pcommon.Timestamp {
		if !t.IsZero() {
			return pcommon.NewTimestampFromTime(t)
		}
		return ts(mono)
	}
	for _, p := range s.Phases {
		sp := ss.AppendEmpty()
		sp.SetTraceID(traceID)
		sp.SetSpanID(SpanID(s.ID, s.Role, p.Phase))
		sp.SetParentSpanID(rootID)
		sp.SetName(schema.PhaseSpanName(p.Phase))
		sp.SetKind(ptrace.SpanKindInternal)
		sp.SetStartTimestamp(wallTS(p.Start, p.BeginNs))
		sp.SetEndTimestamp(wallTS(p.End, p.EndNs))
		if s.EndTime.IsZero() {
			end = max(end, sp.EndTimestamp())
		}
		putAllExcept(sp.Attributes(), unrecordedIn(s, model.PhaseAttr(p.Phase, "")),
			PhaseStartAttributes(s.ID, s.Role, p.Phase, p.BeginNs), PhaseEndAttributes(p))
		if p.Failed {
			sp.Status().SetCode(ptrace.StatusCodeError)
			sp.Status().SetMessage(p.Error)
		}
		appendEvents(sp, s, p.Phase)
	}
	root := ss.AppendEmpty()
	root.SetTraceID(traceID)
	root.SetSpanID(rootID)
	if s.Role == schema.RoleSource {
		root.SetParentSpanID(SpanID(s.ID, schema.RoleDestination, 0))
	}
	root.SetName(schema.SpanMigration)
	root.SetKind(ptrace.SpanKindInternal)
	root.SetStartTimestamp(start)
	root.SetEndTimestamp(max(start, end))
	putAllExcept(root.Attributes(), unrecordedIn(s, model.RootAttr("")), RootEndAttributes(s))
	for i, c := range s.SettingsChanges {
		e := root.Events().AppendEmpty()
		e.SetName(schema.EventSettingChanged)
		e.SetTimestamp(pcommon.NewTimestampFromTime(c.Time))
		at := model.AttrRef{Span: schema.SpanMigration, Event: schema.EventSettingChanged, Of: strconv.Itoa(i)}
		putAllExcept(e.Attributes(), unrecordedIn(s, at), SettingChangeAttributes(c))
	}
	if s.Failed() {
		root.Status().SetCode(ptrace.StatusCodeError)
		root.Status().SetMessage(s.Error)
	}
}

func appendEvents(sp ptrace.Span, s *model.Side, p schema.Phase) {
	at := sp.StartTimestamp()
	add := func(name, of string, attrs []attribute.KeyValue) {
		e := sp.Events().AppendEmpty()
		e.SetName(name)
		e.SetTimestamp(at)
		putAllExcept(e.Attributes(), unrecordedIn(s, model.EventAttr(p, name, of, "")), attrs)
	}
	for _, r := range s.PrecopyRounds {
		if r.Phase == p {
			add(schema.EventPrecopyRound, strconv.FormatInt(r.Round, 10), RoundAttributes(r))
		}
	}
	if p == EventPhase(schema.EventThrottle) {
		for _, t := range s.ThrottleSteps {
			add(schema.EventThrottle, strconv.FormatInt(t.Round, 10), ThrottleAttributes(t))
		}
	}
	switch p {
	case EventPhase(schema.EventClockOffset):
		if c := s.ClockOffset; c != nil {
			add(schema.EventClockOffset, "", ClockOffsetAttributes(*c))
		}
	case EventPhase(schema.EventTimeDataStage):
		if t := s.TimeRead; t != nil {
			add(schema.EventTimeDataRead, "", TimeReadAttributes(*t))
		}
		for _, st := range schema.Stages {
			if v := s.Stage(st); v.Present {
				add(schema.EventTimeDataStage, st.String(), StageAttributes(st, v))
			}
		}
	}
	if p == schema.PhaseFinish {
		for _, sp := range s.SourcePhases {
			add(schema.EventSourcePhase, sp.Phase.String(), SourcePhaseAttributes(sp))
		}
		if b := s.Blackout; b != nil {
			add(schema.EventBlackout, "", BlackoutAttributes(*b))
		}
		if c := s.Continuity; c != nil {
			add(schema.EventContinuity, "", ContinuityAttributes(*c))
		}
	}
}

// TraceID is the trace id Traces gives side s: its recorded one if it has
// a valid one, else one derived from the migration id.
func TraceID(s *model.Side) pcommon.TraceID {
	var id pcommon.TraceID
	if b, err := hexDecode16(s.TraceID); err == nil {
		copy(id[:], b)
		if !id.IsEmpty() {
			return id
		}
	}
	sum := sha256.Sum256([]byte(s.ID))
	copy(id[:], sum[:16])
	return id
}

// SpanID derives a stable, non-zero span id from the migration, the role
// and the phase (0 for the root span).
func SpanID(migrationID string, r schema.Role, p schema.Phase) pcommon.SpanID {
	sum := sha256.Sum256([]byte(migrationID))
	v := binary.BigEndian.Uint64(sum[16:24]) + uint64(r)<<32 + uint64(p) + 1
	if v == 0 {
		v = 1
	}
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], v)
	return id
}

// putAll copies OTel attributes into a pdata map: the encodings above
// serve live spans and built traces alike.
func putAll(dst pcommon.Map, sets ...[]attribute.KeyValue) { putAllExcept(dst, nil, sets...) }

// putAllExcept is putAll leaving out the keys in skip: attributes a
// decoded side records as not carried, so that encoding it writes the
// trace it was read from.
func putAllExcept(dst pcommon.Map, skip map[string]bool, sets ...[]attribute.KeyValue) {
	for _, kvs := range sets {
		for _, kv := range kvs {
			k := string(kv.Key)
			if skip[k] {
				continue
			}
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
}

// unrecordedIn returns the attributes s records as not carried by the
// span or event at (whose Attr is ignored), or nil.
func unrecordedIn(s *model.Side, at model.AttrRef) map[string]bool {
	var skip map[string]bool
	for _, u := range s.Unrecorded {
		if u.Span == at.Span && u.Event == at.Event && u.Of == at.Of {
			if skip == nil {
				skip = make(map[string]bool)
			}
			skip[u.Attr] = true
		}
	}
	return skip
}
