package spancodec

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// ErrBadAttribute: a migtrace span carries an attribute of the wrong type
// or an unparsable value.
var ErrBadAttribute = errors.New("bad attribute")

// Decoder folds migtrace spans, arriving in any order and from any number
// of batches, into sides. Spans of other applications are ignored. It is
// not safe for concurrent use.
type Decoder struct {
	sides map[sideKey]*sideState
	// seen maps each migtrace span id to what it held, so that a span
	// exported twice is folded once and one whose contents changed is
	// set aside as a conflict rather than silently preferred.
	seen  map[pcommon.SpanID]seenSpan
	spans int64 // spans seen, ours or not
	ours  int64 // migtrace spans folded in
	fp    fpWriter
}

type seenSpan struct {
	sum  spanSum
	side sideKey
}

type sideKey struct {
	id   string
	role schema.Role
}

// sideState is a side under construction, with what is needed to resolve
// spans that arrive in any order or twice.
type sideState struct {
	m           model.Side
	haveRoot    bool
	havePhase   [schema.PhaseFinish + 1]bool
	firstPhaseT pcommon.Timestamp
	rootTrace   pcommon.TraceID
	// spans are the side's folded spans, to find those whose trace id
	// is not the side's once every span is in.
	spans []spanTrace
}

type spanTrace struct {
	spanID  pcommon.SpanID
	name    string
	traceID pcommon.TraceID
}

// NewDecoder returns an empty Decoder.
func NewDecoder() *Decoder {
	return &Decoder{sides: make(map[sideKey]*sideState), seen: make(map[pcommon.SpanID]seenSpan)}
}

// Counts returns how many spans were seen and how many of them were
// migtrace's.
func (d *Decoder) Counts() (spans, ours int64) { return d.spans, d.ours }

// AddTraces folds every span of td.
func (d *Decoder) AddTraces(td ptrace.Traces) error {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			d.spans += int64(spans.Len())
			for k := 0; k < spans.Len(); k++ {
				if err := d.AddSpan(spans.At(k)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

var phaseByName = func() map[string]schema.Phase {
	m := make(map[string]schema.Phase, len(schema.Phases))
	for _, p := range schema.Phases {
		m[schema.PhaseSpanName(p)] = p
	}
	return m
}()

// AddSpan folds one span.
func (d *Decoder) AddSpan(sp ptrace.Span) error {
	name := sp.Name()
	phase, isPhase := phaseByName[name]
	if name != schema.SpanMigration && !isPhase {
		return nil
	}
	attrs := sp.Attributes()
	idv, ok := attrs.Get(schema.AttrMigrationID)
	if !ok || idv.Type() != pcommon.ValueTypeStr || idv.Str() == "" {
		// Another application's span that happens to share a name.
		return nil
	}
	k, err := sideKeyOf(sp, idv.Str(), attrs)
	if err != nil {
		return err
	}
	// A span id seen before: the same span exported twice is folded
	// once; other contents under the same id are a conflict, and neither
	// version is preferred over the first.
	sum := d.fingerprint(sp)
	if id := sp.SpanID(); !id.IsEmpty() {
		if prev, ok := d.seen[id]; ok {
			if prev.sum != sum {
				c := model.SpanConflict{SpanID: id.String(), Span: name, Kind: model.ConflictSpanID}
				d.sides[prev.side].conflict(c)
				// The other copy's side hears of it too, if it has spans
				// of its own; it is not made up from this span alone.
				if other := d.sides[k]; other != nil && k != prev.side {
					other.conflict(c)
				}
			}
			return nil
		}
		d.seen[id] = seenSpan{sum: sum, side: k}
	}
	s := d.side(k)
	a := attrReader{m: attrs, span: name, s: s}
	var folded bool
	if isPhase {
		a.at = model.PhaseAttr(phase, "")
		folded, err = s.addPhase(sp, phase, &a)
	} else {
		a.at = model.RootAttr("")
		folded, err = s.addRoot(sp, &a)
	}
	if err != nil || !folded {
		return err
	}
	d.ours++
	s.spans = append(s.spans, spanTrace{spanID: sp.SpanID(), name: name, traceID: sp.TraceID()})
	return s.addEvents(sp, phase)
}

func sideKeyOf(sp ptrace.Span, id string, attrs pcommon.Map) (sideKey, error) {
	rv, ok := attrs.Get(schema.AttrRole)
	if !ok {
		return sideKey{}, fmt.Errorf("%w: span %q of migration %s has no %s", ErrBadAttribute, sp.Name(), id, schema.AttrRole)
	}
	role, err := schema.ParseRole(rv.AsString())
	if err != nil {
		return sideKey{}, fmt.Errorf("%w: span %q of migration %s: %s: %v", ErrBadAttribute, sp.Name(), id, schema.AttrRole, err)
	}
	return sideKey{id: id, role: role}, nil
}

// side returns the side k, creating it.
func (d *Decoder) side(k sideKey) *sideState {
	s := d.sides[k]
	if s == nil {
		// Room for a root and every phase: one allocation a side.
		s = &sideState{m: model.Side{ID: k.id, Role: k.role}, spans: make([]spanTrace, 0, len(schema.Phases)+1)}
		d.sides[k] = s
	}
	return s
}

func (s *sideState) conflict(c model.SpanConflict) { s.m.Conflicts = append(s.m.Conflicts, c) }

// Attributes every span or event of a kind carries when migtrace writes
// it (see encode.go); one that is absent is recorded in
// model.Side.Unrecorded. Attributes written only in some cases (an
// error, a peer's name) are not listed.
var (
	rootAttrs      = []string{schema.AttrInstance, schema.AttrBytesSent, schema.AttrBytesReceived, schema.AttrResult}
	phaseAttrs     = []string{schema.AttrPhase, schema.AttrPhaseBeginNs, schema.AttrPhaseEndNs}
	ramPhaseAttrs  = []string{schema.AttrRAMBytes, schema.AttrRAMPages, schema.AttrRAMZeroPages, schema.AttrRAMRounds, schema.AttrRAMPaused}
	stageAttrs     = []string{schema.AttrGuestFreq, schema.AttrGuestTSC, schema.AttrBootHrtime, schema.AttrHrtime, schema.AttrWallclock, schema.AttrStageDurationNs, schema.AttrGuestTSCDelta, schema.AttrBootHrtimeDelta, schema.AttrGuestUptimeNs, schema.AttrMigrateDeltaNs, schema.AttrMigrateDeltaNegative}
	kernelAttrs    = []string{schema.AttrVMMLatencyNs}
	timeReadAttrs  = []string{schema.AttrGuestFreq, schema.AttrGuestTSC, schema.AttrBootHrtime, schema.AttrHrtime, schema.AttrWallclock}
	clockAttrs     = []string{schema.AttrClockSamples}
	estimateAttrs  = []string{schema.AttrClockOffsetNs, schema.AttrClockOffsetErrorNs, schema.AttrClockRTTNs, schema.AttrClockSkewCorrected}
	throttleAttrs  = []string{schema.AttrRAMRound, schema.AttrThrottlePercent}
	roundAttrs     = []string{schema.AttrRAMRound, schema.AttrRAMPages, schema.AttrRAMZeroPages, schema.AttrRAMBytes, schema.AttrRAMWireBytes, schema.AttrRAMDirtyPages, schema.AttrRAMRoundNs}
	srcPhaseAttrs  = []string{schema.AttrPhaseBeginNs, schema.AttrPhaseEndNs, schema.AttrRAMBytes, schema.AttrRAMPages}
	blackoutAttrs  = []string{schema.AttrBlackoutNs}
	continuityAttr = []string{schema.AttrTSCMonotonic, schema.AttrTSCSamples, schema.AttrTSCLast, schema.AttrDeviceStateMatches}
	settingsAttrs  = []string{schema.AttrSettingMaxBandwidth, schema.AttrSettingDowntimeTargetNs, schema.AttrSettingMaxRounds, schema.AttrSettingAutoConverge, schema.AttrSettingClockSkewCorrection, schema.AttrSettingSkipMemoryChecksum}
	changeAttrs    = []string{schema.AttrSettingName, schema.AttrSettingOld, schema.AttrSettingNew}
)

// addRoot folds a root span; false when the side already has one.
func (s *sideState) addRoot(sp ptrace.Span, a *attrReader) (bool, error) {
	if s.haveRoot {
		s.conflict(model.SpanConflict{SpanID: sp.SpanID().String(), Span: sp.Name(), Kind: model.ConflictDuplicate})
		return false, nil
	}
	s.haveRoot = true
	s.rootTrace = sp.TraceID()
	a.need(rootAttrs...)
	m := &s.m
	m.StartTime = sp.StartTimestamp().AsTime()
	m.EndTime = sp.EndTimestamp().AsTime()
	m.Instance = a.str(schema.AttrInstance)
	m.Peer = a.str(schema.AttrPeer)
	m.PeerName = a.str(schema.AttrPeerName)
	m.Backend = a.str(schema.AttrBackend)
	m.MemoryBytes = a.int(schema.AttrMemoryBytes)
	m.ProtocolVersion = a.int(schema.AttrProtocolVersion)
	m.Result = a.str(schema.AttrResult)
	m.Error = a.str(schema.AttrError)
	m.ErrorPhase = a.str(schema.AttrErrorPhase)
	m.CancelledBy = a.str(schema.AttrCancelledBy)
	// Traces from before settings were recorded carry none of them: no
	// record, rather than six attributes not recorded.
	if slices.ContainsFunc(settingsAttrs, a.has) {
		a.need(settingsAttrs...)
		m.Settings = &model.Settings{
			MaxBandwidth:        a.int(schema.AttrSettingMaxBandwidth),
			DowntimeTargetNs:    a.int(schema.AttrSettingDowntimeTargetNs),
			MaxRounds:           a.int(schema.AttrSettingMaxRounds),
			AutoConverge:        a.bool(schema.AttrSettingAutoConverge),
			ClockSkewCorrection: a.bool(schema.AttrSettingClockSkewCorrection),
			SkipMemoryChecksum:  a.bool(schema.AttrSettingSkipMemoryChecksum),
		}
	}
	m.BytesSent = a.int(schema.AttrBytesSent)
	m.BytesReceived = a.int(schema.AttrBytesReceived)
	m.DowntimeNs = a.int(schema.AttrDowntimeNs)
	m.SourceDowntimeNs = a.int(schema.AttrSourceDowntimeNs)
	m.Handoff = a.str(schema.AttrHandoffState)
	m.HandoffSettledBy = a.str(schema.AttrHandoffSettledBy)
	if a.has(schema.AttrBlackoutNs) {
		m.Blackout = a.blackout()
	}
	if a.has(schema.AttrMemoryLateResult) {
		// The duration is written with every result.
		a.need(schema.AttrMemoryLateNs)
		m.MemoryLate = &model.MemoryLate{
			Result:     a.str(schema.AttrMemoryLateResult),
			DurationNs: a.int(schema.AttrMemoryLateNs),
			Error:      a.str(schema.AttrMemoryLateError),
		}
	}
	return true, a.err
}

// addPhase folds a phase span; false when the side already has a span
// for that phase (with another span id: a duplicate export keeps its
// id), which is set aside so the result does not depend on input order
// beyond "the first wins".
func (s *sideState) addPhase(sp ptrace.Span, p schema.Phase, a *attrReader) (bool, error) {
	if s.havePhase[p] {
		s.conflict(model.SpanConflict{SpanID: sp.SpanID().String(), Span: sp.Name(), Kind: model.ConflictDuplicate})
		return false, nil
	}
	s.havePhase[p] = true
	a.need(phaseAttrs...)
	if model.IsRAM(p) {
		a.need(ramPhaseAttrs...)
	}
	t := model.PhaseTiming{
		Phase:     p,
		BeginNs:   int64(sp.StartTimestamp()),
		EndNs:     int64(sp.EndTimestamp()),
		Start:     sp.StartTimestamp().AsTime(),
		End:       sp.EndTimestamp().AsTime(),
		Bytes:     a.int(schema.AttrRAMBytes),
		Pages:     a.int(schema.AttrRAMPages),
		ZeroPages: a.int(schema.AttrRAMZeroPages),
		Rounds:    a.int(schema.AttrRAMRounds),
		Paused:    a.bool(schema.AttrRAMPaused),
		Failed:    sp.Status().Code() == ptrace.StatusCodeError,
		Error:     a.str(schema.AttrError),
	}
	if t.Error == "" && t.Failed {
		t.Error = sp.Status().Message()
	}
	// Both or neither: mixing a monotonic begin with a wall-clock end
	// would give nonsense.
	if a.has(schema.AttrPhaseBeginNs) && a.has(schema.AttrPhaseEndNs) {
		t.BeginNs, t.EndNs = a.int(schema.AttrPhaseBeginNs), a.int(schema.AttrPhaseEndNs)
	}
	if sp.StartTimestamp() == 0 {
		t.Start = time.Time{}
	}
	if sp.EndTimestamp() == 0 {
		t.End = time.Time{}
	}
	if a.err != nil {
		return false, a.err
	}
	if st := sp.StartTimestamp(); s.firstPhaseT == 0 || (st != 0 && st < s.firstPhaseT) {
		s.firstPhaseT = st
	}
	s.m.Phases = insertPhase(s.m.Phases, t)
	return true, nil
}

// insertPhase keeps phases in protocol order as they arrive in any order.
func insertPhase(phases []model.PhaseTiming, t model.PhaseTiming) []model.PhaseTiming {
	i := len(phases)
	for i > 0 && phases[i-1].Phase > t.Phase {
		i--
	}
	if phases == nil {
		phases = make([]model.PhaseTiming, 0, len(schema.Phases))
	}
	phases = append(phases, model.PhaseTiming{})
	copy(phases[i+1:], phases[i:])
	phases[i] = t
	return phases
}

func (s *sideState) addEvents(sp ptrace.Span, p schema.Phase) error {
	evs := sp.Events()
	m := &s.m
	for i := 0; i < evs.Len(); i++ {
		ev := evs.At(i)
		a := attrReader{m: ev.Attributes(), span: sp.Name(), event: ev.Name(), s: s,
			at: model.EventAttr(p, ev.Name(), "", "")}
		switch ev.Name() {
		case schema.EventSettingChanged:
			if p != 0 {
				break // it belongs on the root span
			}
			a.at = model.AttrRef{Span: schema.SpanMigration, Event: ev.Name(), Of: strconv.Itoa(len(m.SettingsChanges))}
			a.need(changeAttrs...)
			c := model.SettingChange{
				Time: ev.Timestamp().AsTime(), Setting: a.str(schema.AttrSettingName),
				Old: a.int(schema.AttrSettingOld), New: a.int(schema.AttrSettingNew), By: a.str(schema.AttrSettingBy),
			}
			if a.has(schema.AttrPhase) {
				phase, err := schema.ParsePhase(a.str(schema.AttrPhase))
				if err != nil {
					return fmt.Errorf("%w: span %q event %q: %v", ErrBadAttribute, a.span, a.event, err)
				}
				c.Phase = phase
			}
			m.SettingsChanges = append(m.SettingsChanges, c)
		case schema.EventTimeDataStage:
			if err := addStage(m, &a); err != nil {
				return err
			}
		case schema.EventTimeDataRead:
			a.need(timeReadAttrs...)
			m.TimeRead = &model.TimeRead{
				GuestFreq:  a.uint(schema.AttrGuestFreq),
				GuestTSC:   a.uint(schema.AttrGuestTSC),
				BootHrtime: a.int(schema.AttrBootHrtime),
				Hrtime:     a.int(schema.AttrHrtime),
				Wallclock:  a.str(schema.AttrWallclock),
			}
		case schema.EventClockOffset:
			a.need(clockAttrs...)
			m.ClockOffset = &model.ClockOffset{
				OffsetNs:      a.int(schema.AttrClockOffsetNs),
				ErrorNs:       a.int(schema.AttrClockOffsetErrorNs),
				RTTNs:         a.int(schema.AttrClockRTTNs),
				Samples:       a.int(schema.AttrClockSamples),
				SkewCorrected: a.bool(schema.AttrClockSkewCorrected),
			}
			if m.ClockOffset.Samples != 0 {
				// Only an estimate made from samples has the rest.
				a.need(estimateAttrs...)
			}
		case schema.EventPrecopyRound:
			r := model.PrecopyRound{
				Phase:      p,
				Round:      a.int(schema.AttrRAMRound),
				Pages:      a.int(schema.AttrRAMPages),
				ZeroPages:  a.int(schema.AttrRAMZeroPages),
				Bytes:      a.int(schema.AttrRAMBytes),
				WireBytes:  a.int(schema.AttrRAMWireBytes),
				DirtyPages: a.int(schema.AttrRAMDirtyPages),
				RoundNs:    a.int(schema.AttrRAMRoundNs),
			}
			a.at.Of = strconv.FormatInt(r.Round, 10)
			a.need(roundAttrs...)
			m.PrecopyRounds = append(m.PrecopyRounds, r)
		case schema.EventThrottle:
			t := model.ThrottleStep{Round: a.int(schema.AttrRAMRound), Percent: a.int(schema.AttrThrottlePercent)}
			a.at.Of = strconv.FormatInt(t.Round, 10)
			a.need(throttleAttrs...)
			m.ThrottleSteps = append(m.ThrottleSteps, t)
		case schema.EventSourcePhase:
			if m.Role != schema.RoleDestination {
				break
			}
			phase, err := schema.ParsePhase(a.str(schema.AttrPhase))
			if err != nil {
				return fmt.Errorf("%w: span %q event %q: %v", ErrBadAttribute, a.span, a.event, err)
			}
			if slices.ContainsFunc(m.SourcePhases, func(t model.PhaseTiming) bool { return t.Phase == phase }) {
				break // a duplicate export
			}
			a.at.Of = phase.String()
			a.need(srcPhaseAttrs...)
			m.SourcePhases = insertPhase(m.SourcePhases, model.PhaseTiming{
				Phase: phase, BeginNs: a.int(schema.AttrPhaseBeginNs), EndNs: a.int(schema.AttrPhaseEndNs),
				Bytes: a.int(schema.AttrRAMBytes), Pages: a.int(schema.AttrRAMPages),
			})
		case schema.EventBlackout:
			a.need(blackoutAttrs...)
			m.Blackout = a.blackout()
		case schema.EventContinuity:
			a.need(continuityAttr...)
			c := &model.Continuity{
				TSCMonotonic:       a.bool(schema.AttrTSCMonotonic),
				TSCSamples:         a.int(schema.AttrTSCSamples),
				TSCLast:            a.uint(schema.AttrTSCLast),
				MemoryChecksumOK:   a.bool(schema.AttrMemoryChecksumOK),
				MemoryUnchecked:    !a.has(schema.AttrMemoryChecksumOK),
				DeviceStateMatches: a.bool(schema.AttrDeviceStateMatches),
				MemoryVerify:       a.str(schema.AttrMemoryVerify),
				MemorySamplePages:  a.int(schema.AttrMemorySamplePages),
			}
			if a.has(schema.AttrContinuityErrorNs) {
				v := a.int(schema.AttrContinuityErrorNs)
				c.ErrorNs = &v
				c.ErrorSamples = a.int(schema.AttrContinuitySamples)
			}
			if a.has(schema.AttrTSCOffsetHonoured) {
				v := a.bool(schema.AttrTSCOffsetHonoured)
				c.TSCOffsetHonoured = &v
			}
			m.Continuity = c
		}
		if a.err != nil {
			return a.err
		}
	}
	return nil
}

func addStage(m *model.Side, a *attrReader) error {
	stage, err := schema.ParseStage(a.str(schema.AttrTimeStage))
	if err != nil {
		return fmt.Errorf("%w: span %q event %q: %v", ErrBadAttribute, a.span, a.event, err)
	}
	a.at = model.StageAttr(stage, "")
	a.need(stageAttrs...)
	if stage == schema.StageKernel {
		a.need(kernelAttrs...)
	}
	m.Stages[model.StageIndex(stage)] = model.StageValues{
		Present:              true,
		GuestFreq:            a.uint(schema.AttrGuestFreq),
		GuestTSC:             a.uint(schema.AttrGuestTSC),
		BootHrtime:           a.int(schema.AttrBootHrtime),
		Hrtime:               a.int(schema.AttrHrtime),
		Wallclock:            a.str(schema.AttrWallclock),
		DurationNs:           a.int(schema.AttrStageDurationNs),
		GuestTSCDelta:        a.uint(schema.AttrGuestTSCDelta),
		BootHrtimeDelta:      a.int(schema.AttrBootHrtimeDelta),
		GuestUptimeNs:        a.int(schema.AttrGuestUptimeNs),
		MigrateDeltaNs:       a.int(schema.AttrMigrateDeltaNs),
		MigrateDeltaNegative: a.bool(schema.AttrMigrateDeltaNegative),
		VMMLatencyNs:         a.int(schema.AttrVMMLatencyNs),
	}
	return a.err
}

// Len is the number of sides seen so far.
func (d *Decoder) Len() int { return len(d.sides) }

// Sides returns every side folded so far, sorted by start time. A source
// whose own phase spans are missing but whose destination recorded the
// source's report of them is rebuilt from that report (model.PeerSource).
// A side whose root span is missing (its process died before exporting
// it) has Result "" and starts at its earliest phase span.
func (d *Decoder) Sides() []model.Side {
	out := make([]model.Side, 0, len(d.sides)+1)
	for k, s := range d.sides {
		if k.role == schema.RoleDestination && len(s.m.SourcePhases) > 0 {
			src := d.sides[sideKey{id: k.id, role: schema.RoleSource}]
			if src == nil || len(src.m.Phases) == 0 {
				dst := d.finished(s)
				var own *model.Side
				if src != nil && src.haveRoot {
					own = &src.m
				}
				out = append(out, model.PeerSource(&dst, own))
			}
		}
		if k.role == schema.RoleSource && len(s.m.Phases) == 0 && d.hasSourcePhases(k.id) {
			continue // replaced by the peer's report above
		}
		out = append(out, d.finished(s))
	}
	model.SortByStart(out)
	return out
}

func (d *Decoder) finished(s *sideState) model.Side {
	m := s.m
	if !s.haveRoot {
		// The root span ends last; a crash can lose it. Start order then
		// comes from the earliest phase span.
		m.StartTime = s.firstPhaseT.AsTime()
		m.RootMissing = true
	}
	ref := s.traceRef()
	if !ref.IsEmpty() {
		m.TraceID = ref.String()
	}
	m.ForeignSpans = nil
	for _, t := range s.spans {
		if t.traceID != ref {
			m.ForeignSpans = append(m.ForeignSpans, model.ForeignSpan{SpanID: t.spanID.String(), Span: t.name, TraceID: t.traceID.String()})
		}
	}
	// Evidence in a fixed order, so the result does not depend on the
	// order spans arrived in.
	m.Conflicts = slices.Clone(m.Conflicts)
	slices.SortFunc(m.Conflicts, func(a, b model.SpanConflict) int {
		return cmp.Or(strings.Compare(a.Span, b.Span), strings.Compare(a.SpanID, b.SpanID), strings.Compare(string(a.Kind), string(b.Kind)))
	})
	m.Conflicts = slices.Compact(m.Conflicts)
	slices.SortFunc(m.ForeignSpans, func(a, b model.ForeignSpan) int {
		return cmp.Or(strings.Compare(a.Span, b.Span), strings.Compare(a.SpanID, b.SpanID))
	})
	m.Unrecorded = slices.Clone(m.Unrecorded)
	slices.SortFunc(m.Unrecorded, func(a, b model.AttrRef) int {
		return cmp.Or(strings.Compare(a.Span, b.Span), strings.Compare(a.Event, b.Event), strings.Compare(a.Of, b.Of), strings.Compare(a.Attr, b.Attr))
	})
	m.Unrecorded = slices.Compact(m.Unrecorded)
	// In the order they were made, as the side holds them, whatever order
	// they were recorded on the span in.
	m.SettingsChanges = slices.Clone(m.SettingsChanges)
	slices.SortStableFunc(m.SettingsChanges, func(a, b model.SettingChange) int { return a.Time.Compare(b.Time) })
	return m
}

// traceRef is the trace id a side's spans should carry: its root span's,
// or without one the id most of its spans carry (the smallest on a tie).
func (s *sideState) traceRef() pcommon.TraceID {
	if s.haveRoot {
		return s.rootTrace
	}
	counts := make(map[pcommon.TraceID]int)
	var best pcommon.TraceID
	for _, t := range s.spans {
		counts[t.traceID]++
	}
	for id, n := range counts {
		if b := counts[best]; n > b || (n == b && string(id[:]) < string(best[:])) {
			best = id
		}
	}
	return best
}

func (d *Decoder) hasSourcePhases(id string) bool {
	dst := d.sides[sideKey{id: id, role: schema.RoleDestination}]
	return dst != nil && len(dst.m.SourcePhases) > 0
}

// attrReader reads typed attributes, keeping the first type error so the
// caller checks once.
type attrReader struct {
	m     pcommon.Map
	span  string
	event string
	err   error
	// s and at say where absent attributes are recorded (need).
	s  *sideState
	at model.AttrRef
}

func (a *attrReader) has(k string) bool { _, ok := a.m.Get(k); return ok }

// need records each of keys the span or event lacks as not recorded.
func (a *attrReader) need(keys ...string) {
	for _, k := range keys {
		if !a.has(k) {
			r := a.at
			r.Attr = k
			a.s.m.Unrecorded = append(a.s.m.Unrecorded, r)
		}
	}
}

func (a *attrReader) fail(k string, v pcommon.Value, want string) {
	if a.err != nil {
		return
	}
	where := fmt.Sprintf("span %q", a.span)
	if a.event != "" {
		where += fmt.Sprintf(" event %q", a.event)
	}
	a.err = fmt.Errorf("%w: %s: %s = %s (%s), want %s", ErrBadAttribute, where, k, v.AsString(), v.Type(), want)
}

func (a *attrReader) str(k string) string {
	v, ok := a.m.Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

// int accepts an int, an integral double or a base-10 string, since
// converters between trace formats do not all keep int64 as int.
func (a *attrReader) int(k string) int64 {
	v, ok := a.m.Get(k)
	if !ok {
		return 0
	}
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeDouble:
		if f := v.Double(); f == float64(int64(f)) {
			return int64(f)
		}
	case pcommon.ValueTypeStr:
		if n, err := strconv.ParseInt(v.Str(), 10, 64); err == nil {
			return n
		}
	}
	a.fail(k, v, "an int64")
	return 0
}

// uint reads the base-10 strings unsigned 64-bit values are recorded as.
func (a *attrReader) uint(k string) uint64 {
	v, ok := a.m.Get(k)
	if !ok {
		return 0
	}
	switch v.Type() {
	case pcommon.ValueTypeStr:
		if n, err := strconv.ParseUint(v.Str(), 10, 64); err == nil {
			return n
		}
	case pcommon.ValueTypeInt:
		if n := v.Int(); n >= 0 {
			return uint64(n)
		}
	}
	a.fail(k, v, "a base-10 uint64 string")
	return 0
}

func (a *attrReader) bool(k string) bool {
	v, ok := a.m.Get(k)
	if !ok {
		return false
	}
	switch v.Type() {
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeStr:
		if b, err := strconv.ParseBool(v.Str()); err == nil {
			return b
		}
	}
	a.fail(k, v, "a bool")
	return false
}

func (a *attrReader) blackout() *model.Blackout {
	b := &model.Blackout{Ns: a.int(schema.AttrBlackoutNs)}
	if a.has(schema.AttrBlackoutErrorNs) {
		v := a.int(schema.AttrBlackoutErrorNs)
		b.ErrorNs = &v
	}
	return b
}

func hexDecode16(s string) ([]byte, error) {
	if len(s) != 32 {
		return nil, fmt.Errorf("trace id %q: want 32 hex digits", s)
	}
	return hex.DecodeString(s)
}

// fingerprint digests what a span says about a migration: its ids,
// times, status, and its and its events' migtrace attributes (by value
// as text, so a converter that turns an int into a string does not make
// two exports of one span differ). Attributes other tools add are left
// out for the same reason. The span is laid out in the decoder's buffer
// and hashed once, which keeps this off the allocator: it runs for every
// span read.
func (d *Decoder) fingerprint(sp ptrace.Span) spanSum {
	f := &d.fp
	f.b = f.b[:0]
	tid, pid := sp.TraceID(), sp.ParentSpanID()
	f.b = append(f.b, tid[:]...)
	f.b = append(f.b, pid[:]...)
	f.str(sp.Name())
	f.num(uint64(sp.StartTimestamp()))
	f.num(uint64(sp.EndTimestamp()))
	f.num(uint64(sp.Status().Code()))
	f.str(sp.Status().Message())
	f.attrs(sp.Attributes())
	evs := sp.Events()
	f.num(uint64(evs.Len()))
	for i := 0; i < evs.Len(); i++ {
		f.str(evs.At(i).Name())
		f.num(uint64(evs.At(i).Timestamp()))
		f.attrs(evs.At(i).Attributes())
	}
	full := sha256.Sum256(f.b)
	var sum spanSum
	copy(sum[:], full[:])
	return sum
}

// spanSum is a span's fingerprint: half a SHA-256, ample to tell the
// spans of one input apart.
type spanSum [16]byte

// fpWriter lays a span out for fingerprint; its buffers are reused.
type fpWriter struct {
	b    []byte
	keys []string
}

func (f *fpWriter) num(v uint64) { f.b = binary.BigEndian.AppendUint64(f.b, v) }

func (f *fpWriter) str(v string) {
	f.num(uint64(len(v)))
	f.b = append(f.b, v...)
}

func (f *fpWriter) attrs(m pcommon.Map) {
	f.keys = f.keys[:0]
	for k := range m.All() {
		if strings.HasPrefix(k, "migration.") {
			f.keys = append(f.keys, k)
		}
	}
	slices.Sort(f.keys)
	f.num(uint64(len(f.keys)))
	for _, k := range f.keys {
		v, _ := m.Get(k)
		f.str(k)
		// The value as the text AsString gives, without its allocation,
		// after its length.
		mark := len(f.b)
		f.num(0)
		switch v.Type() {
		case pcommon.ValueTypeStr:
			f.b = append(f.b, v.Str()...)
		case pcommon.ValueTypeInt:
			f.b = strconv.AppendInt(f.b, v.Int(), 10)
		case pcommon.ValueTypeBool:
			f.b = strconv.AppendBool(f.b, v.Bool())
		case pcommon.ValueTypeDouble:
			f.b = strconv.AppendFloat(f.b, v.Double(), 'f', -1, 64)
		default:
			f.b = append(f.b, v.AsString()...)
		}
		binary.BigEndian.PutUint64(f.b[mark:], uint64(len(f.b)-mark-8))
	}
}
