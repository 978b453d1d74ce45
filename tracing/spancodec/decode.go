package spancodec

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"

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
	spans int64 // spans seen, ours or not
	ours  int64 // migtrace spans folded in
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
}

// NewDecoder returns an empty Decoder.
func NewDecoder() *Decoder { return &Decoder{sides: make(map[sideKey]*sideState)} }

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
	s, err := d.sideFor(sp, idv.Str(), attrs)
	if err != nil {
		return err
	}
	d.ours++
	a := attrReader{m: attrs, span: name}
	if isPhase {
		err = s.addPhase(sp, phase, a)
	} else {
		err = s.addRoot(sp, a)
	}
	if err != nil {
		return err
	}
	return s.addEvents(sp, phase)
}

func (d *Decoder) sideFor(sp ptrace.Span, id string, attrs pcommon.Map) (*sideState, error) {
	rv, ok := attrs.Get(schema.AttrRole)
	if !ok {
		return nil, fmt.Errorf("%w: span %q of migration %s has no %s", ErrBadAttribute, sp.Name(), id, schema.AttrRole)
	}
	role, err := schema.ParseRole(rv.AsString())
	if err != nil {
		return nil, fmt.Errorf("%w: span %q of migration %s: %s: %v", ErrBadAttribute, sp.Name(), id, schema.AttrRole, err)
	}
	k := sideKey{id: id, role: role}
	s := d.sides[k]
	if s == nil {
		s = &sideState{m: model.Side{ID: id, Role: role}}
		d.sides[k] = s
	}
	if s.m.TraceID == "" && !sp.TraceID().IsEmpty() {
		s.m.TraceID = sp.TraceID().String()
	}
	return s, nil
}

func (s *sideState) addRoot(sp ptrace.Span, a attrReader) error {
	if s.haveRoot {
		return nil // a duplicate export of the same span
	}
	s.haveRoot = true
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
	m.BytesSent = a.int(schema.AttrBytesSent)
	m.BytesReceived = a.int(schema.AttrBytesReceived)
	m.DowntimeNs = a.int(schema.AttrDowntimeNs)
	m.SourceDowntimeNs = a.int(schema.AttrSourceDowntimeNs)
	if a.has(schema.AttrBlackoutNs) {
		m.Blackout = a.blackout()
	}
	return a.err
}

func (s *sideState) addPhase(sp ptrace.Span, p schema.Phase, a attrReader) error {
	if s.havePhase[p] {
		// The same phase twice for one side: a duplicate export. Keep the
		// first so the result does not depend on later lines.
		return nil
	}
	s.havePhase[p] = true
	t := model.PhaseTiming{
		Phase:     p,
		BeginNs:   int64(sp.StartTimestamp()),
		EndNs:     int64(sp.EndTimestamp()),
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
	if a.err != nil {
		return a.err
	}
	if st := sp.StartTimestamp(); s.firstPhaseT == 0 || (st != 0 && st < s.firstPhaseT) {
		s.firstPhaseT = st
	}
	s.m.Phases = insertPhase(s.m.Phases, t)
	return nil
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
		a := attrReader{m: ev.Attributes(), span: sp.Name(), event: ev.Name()}
		switch ev.Name() {
		case schema.EventTimeDataStage:
			if err := addStage(m, a); err != nil {
				return err
			}
		case schema.EventClockOffset:
			m.ClockOffset = &model.ClockOffset{
				OffsetNs:      a.int(schema.AttrClockOffsetNs),
				ErrorNs:       a.int(schema.AttrClockOffsetErrorNs),
				RTTNs:         a.int(schema.AttrClockRTTNs),
				Samples:       a.int(schema.AttrClockSamples),
				SkewCorrected: a.bool(schema.AttrClockSkewCorrected),
			}
		case schema.EventPrecopyRound:
			m.PrecopyRounds = append(m.PrecopyRounds, model.PrecopyRound{
				Phase:      p,
				Round:      a.int(schema.AttrRAMRound),
				Pages:      a.int(schema.AttrRAMPages),
				ZeroPages:  a.int(schema.AttrRAMZeroPages),
				Bytes:      a.int(schema.AttrRAMBytes),
				WireBytes:  a.int(schema.AttrRAMWireBytes),
				DirtyPages: a.int(schema.AttrRAMDirtyPages),
				RoundNs:    a.int(schema.AttrRAMRoundNs),
			})
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
			m.SourcePhases = insertPhase(m.SourcePhases, model.PhaseTiming{
				Phase: phase, BeginNs: a.int(schema.AttrPhaseBeginNs), EndNs: a.int(schema.AttrPhaseEndNs),
				Bytes: a.int(schema.AttrRAMBytes), Pages: a.int(schema.AttrRAMPages),
			})
		case schema.EventBlackout:
			m.Blackout = a.blackout()
		case schema.EventContinuity:
			c := &model.Continuity{
				TSCMonotonic:       a.bool(schema.AttrTSCMonotonic),
				TSCSamples:         a.int(schema.AttrTSCSamples),
				TSCLast:            a.uint(schema.AttrTSCLast),
				MemoryChecksumOK:   a.bool(schema.AttrMemoryChecksumOK),
				MemoryUnchecked:    !a.has(schema.AttrMemoryChecksumOK),
				DeviceStateMatches: a.bool(schema.AttrDeviceStateMatches),
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

func addStage(m *model.Side, a attrReader) error {
	stage, err := schema.ParseStage(a.str(schema.AttrTimeStage))
	if err != nil {
		return fmt.Errorf("%w: span %q event %q: %v", ErrBadAttribute, a.span, a.event, err)
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
				dst := d.side(s)
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
		out = append(out, d.side(s))
	}
	model.SortByStart(out)
	return out
}

func (d *Decoder) side(s *sideState) model.Side {
	m := s.m
	if !s.haveRoot {
		// The root span ends last; a crash can lose it. Start order then
		// comes from the earliest phase span.
		m.StartTime = s.firstPhaseT.AsTime()
	}
	return m
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
}

func (a *attrReader) has(k string) bool { _, ok := a.m.Get(k); return ok }

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
