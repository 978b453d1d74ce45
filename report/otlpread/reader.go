package otlpread

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Reader folds migtrace spans from any number of inputs into one set of
// migrations. It is not safe for concurrent use.
type Reader struct {
	cfg   config
	sides map[sideKey]*side
	stats Stats
}

// Stats counts what a Reader consumed.
type Stats struct {
	Bytes int64 // input bytes, newlines included
	Lines int64 // non-blank lines (or Jaeger chunks)
	Spans int64 // spans seen, migtrace's or not
	Ours  int64 // migtrace spans folded into the model
}

type sideKey struct {
	id   string
	role schema.Role
}

// side is the model under construction: the migration plus what is needed
// to resolve conflicts between spans that arrive in any order.
type side struct {
	m           report.Migration
	haveRoot    bool
	havePhase   [schema.PhaseFinish + 1]bool
	firstPhaseT pcommon.Timestamp
	// On a destination: the source's phases and downtime as the source
	// reported them in its Finish message.
	peerPhases   []report.PhaseTiming
	peerDowntime int64
}

// New returns an empty Reader.
func New(opts ...Option) *Reader {
	return &Reader{cfg: newConfig(opts), sides: make(map[sideKey]*side)}
}

// Stats returns what the reader has consumed so far.
func (r *Reader) Stats() Stats { return r.stats }

// ReadFile reads an OTLP JSON Lines file.
func (r *Reader) ReadFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading traces: %w", err)
	}
	defer f.Close()
	return r.Read(ctx, f, path)
}

// Read reads OTLP JSON Lines from in; name appears in errors. Blank lines
// are skipped; every other line must be one OTLP TracesData object.
//
// Lines are decoded in parallel (decoding dominates the cost; see
// WithDecoders) and folded
// into the model in input order, so results and the error reported (the
// first bad line) do not depend on scheduling. At most a few lines per
// CPU are in flight, which bounds memory.
func (r *Reader) Read(ctx context.Context, in io.Reader, name string) error {
	workers := r.cfg.decoders
	if workers <= 0 {
		// Half the CPUs: decoding allocates heavily, and the collector
		// and the folder need the rest (on 2 CPUs one decoder measured
		// faster than two).
		workers = min(max(runtime.GOMAXPROCS(0)/2, 1), 8)
	}
	jobs := make(chan *lineJob)
	pending := make(chan *lineJob, 2*workers)
	// Line buffers are recycled: there are never more in use than lines
	// in flight.
	free := make(chan []byte, 2*workers+2)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.td, j.err = decodeLine(j.buf)
				// The decoder copies what it keeps, so the line's
				// buffer can carry a later line.
				select {
				case free <- j.buf[:0]:
				default:
				}
				j.buf = nil
				close(j.done)
			}
		}()
	}

	// The folder owns r.sides and r.stats while Read runs.
	stop := make(chan struct{})
	folded := make(chan error, 1)
	go func() {
		var first error
		for j := range pending {
			<-j.done
			if first != nil {
				continue // drain
			}
			err := j.err
			if err == nil {
				r.stats.Lines++
				err = r.addTraces(j.td)
			}
			if err != nil {
				first = &LineError{Name: name, Line: j.line, Err: err}
				close(stop)
			}
		}
		folded <- first
	}()

	scanErr := r.scanLines(ctx, in, name, stop, free, func(j *lineJob) {
		pending <- j
		jobs <- j
	})
	close(jobs)
	close(pending)
	wg.Wait()
	if err := <-folded; err != nil {
		return err // a bad line comes before whatever stopped the scan
	}
	return scanErr
}

type lineJob struct {
	line int
	buf  []byte
	td   ptrace.Traces
	err  error
	done chan struct{}
}

// scanLines splits in into lines and hands each non-blank one, copied, to
// dispatch, until the input ends, ctx is done or stop is closed.
func (r *Reader) scanLines(ctx context.Context, in io.Reader, name string, stop <-chan struct{}, free chan []byte, dispatch func(*lineJob)) error {
	sc := bufio.NewScanner(in)
	initial := min(64<<10, r.cfg.maxLineBytes)
	sc.Buffer(make([]byte, initial), r.cfg.maxLineBytes)
	line := 0
	var nbytes int64
	defer func() { r.stats.Bytes += nbytes }()
	for sc.Scan() {
		line++
		select {
		case <-stop:
			return nil
		default:
		}
		if line%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		buf := sc.Bytes()
		nbytes += int64(len(buf)) + 1
		if len(bytes.TrimSpace(buf)) == 0 {
			continue
		}
		var own []byte
		select {
		case own = <-free:
		default:
		}
		dispatch(&lineJob{line: line, buf: append(own, buf...), done: make(chan struct{})})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &LineError{Name: name, Line: line + 1,
				Err: fmt.Errorf("%w: longer than %d bytes", ErrLineTooLong, r.cfg.maxLineBytes)}
		}
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return ctx.Err()
}

// decodeLine decodes one TracesData JSON object.
func decodeLine(buf []byte) (ptrace.Traces, error) {
	if i := firstNonSpace(buf); i < 0 || buf[i] != '{' {
		return ptrace.Traces{}, fmt.Errorf("%w: a line must be a JSON object (TracesData)", ErrNotTraces)
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(buf)
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if td.ResourceSpans().Len() == 0 {
		return ptrace.Traces{}, fmt.Errorf("%w: no resourceSpans (is this a metrics or logs file?)", ErrNotTraces)
	}
	return td, nil
}

func firstNonSpace(b []byte) int {
	for i, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return i
		}
	}
	return -1
}

var phaseByName = func() map[string]schema.Phase {
	m := make(map[string]schema.Phase, len(schema.Phases))
	for _, p := range schema.Phases {
		m[schema.PhaseSpanName(p)] = p
	}
	return m
}()

func (r *Reader) addTraces(td ptrace.Traces) error {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			r.stats.Spans += int64(spans.Len())
			for k := 0; k < spans.Len(); k++ {
				if err := r.addSpan(spans.At(k)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (r *Reader) addSpan(sp ptrace.Span) error {
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
	s, err := r.sideFor(sp, idv.Str(), attrs)
	if err != nil {
		return err
	}
	r.stats.Ours++
	a := attrReader{m: attrs, span: name}
	if isPhase {
		err = r.addPhase(s, sp, phase, a)
	} else {
		err = addRoot(s, sp, a)
	}
	if err != nil {
		return err
	}
	return addEvents(s, sp, phase)
}

func (r *Reader) sideFor(sp ptrace.Span, id string, attrs pcommon.Map) (*side, error) {
	rv, ok := attrs.Get(schema.AttrRole)
	if !ok {
		return nil, fmt.Errorf("%w: span %q of migration %s has no %s", ErrBadAttribute, sp.Name(), id, schema.AttrRole)
	}
	role, err := schema.ParseRole(rv.AsString())
	if err != nil {
		return nil, fmt.Errorf("%w: span %q of migration %s: %s: %v", ErrBadAttribute, sp.Name(), id, schema.AttrRole, err)
	}
	k := sideKey{id: id, role: role}
	s := r.sides[k]
	if s == nil {
		s = &side{m: report.Migration{ID: id, Role: role}}
		r.sides[k] = s
	}
	if s.m.TraceID == "" && !sp.TraceID().IsEmpty() {
		s.m.TraceID = sp.TraceID().String()
	}
	return s, nil
}

func addRoot(s *side, sp ptrace.Span, a attrReader) error {
	if s.haveRoot {
		return nil // a duplicate export of the same span
	}
	s.haveRoot = true
	m := &s.m
	m.StartTime = sp.StartTimestamp().AsTime()
	m.Instance = a.str(schema.AttrInstance)
	m.Peer = a.str(schema.AttrPeer)
	m.Backend = a.str(schema.AttrBackend)
	m.Result = a.str(schema.AttrResult)
	m.Error = a.str(schema.AttrError)
	m.ErrorPhase = a.str(schema.AttrErrorPhase)
	m.MemoryBytes = a.int(schema.AttrMemoryBytes)
	m.DowntimeNs = a.int(schema.AttrDowntimeNs)
	s.peerDowntime = a.int(schema.AttrSourceDowntimeNs)
	if a.has(schema.AttrBlackoutNs) {
		m.Blackout = &report.Blackout{Ns: a.int(schema.AttrBlackoutNs), ErrorNs: a.int(schema.AttrBlackoutErrorNs)}
	}
	return a.err
}

func (r *Reader) addPhase(s *side, sp ptrace.Span, p schema.Phase, a attrReader) error {
	if s.havePhase[p] {
		// The same phase twice for one side: a duplicate export. Keep the
		// first so the result does not depend on later lines.
		return nil
	}
	s.havePhase[p] = true
	t := report.PhaseTiming{
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
func insertPhase(phases []report.PhaseTiming, t report.PhaseTiming) []report.PhaseTiming {
	i := len(phases)
	for i > 0 && phases[i-1].Phase > t.Phase {
		i--
	}
	if phases == nil {
		phases = make([]report.PhaseTiming, 0, len(schema.Phases))
	}
	phases = append(phases, report.PhaseTiming{})
	copy(phases[i+1:], phases[i:])
	phases[i] = t
	return phases
}

func addEvents(s *side, sp ptrace.Span, p schema.Phase) error {
	evs := sp.Events()
	for i := 0; i < evs.Len(); i++ {
		ev := evs.At(i)
		a := attrReader{m: ev.Attributes(), span: sp.Name(), event: ev.Name()}
		m := &s.m
		switch ev.Name() {
		case schema.EventTimeDataStage:
			if err := addStage(m, a); err != nil {
				return err
			}
		case schema.EventClockOffset:
			m.ClockOffset = &report.ClockOffset{
				OffsetNs:      a.int(schema.AttrClockOffsetNs),
				ErrorNs:       a.int(schema.AttrClockOffsetErrorNs),
				RTTNs:         a.int(schema.AttrClockRTTNs),
				Samples:       a.int(schema.AttrClockSamples),
				SkewCorrected: a.bool(schema.AttrClockSkewCorrected),
			}
		case schema.EventPrecopyRound:
			m.PrecopyRounds = append(m.PrecopyRounds, report.PrecopyRound{
				Phase:      p,
				Round:      a.int(schema.AttrRAMRound),
				Pages:      a.int(schema.AttrRAMPages),
				ZeroPages:  a.int(schema.AttrRAMZeroPages),
				Bytes:      a.int(schema.AttrRAMBytes),
				DirtyPages: a.int(schema.AttrRAMDirtyPages),
				RoundNs:    a.int(schema.AttrRAMRoundNs),
			})
		case schema.EventSourcePhase:
			if m.Role != schema.RoleDestination {
				break
			}
			sp, err := schema.ParsePhase(a.str(schema.AttrPhase))
			if err != nil {
				return fmt.Errorf("%w: span %q event %q: %v", ErrBadAttribute, a.span, a.event, err)
			}
			if slices.ContainsFunc(s.peerPhases, func(t report.PhaseTiming) bool { return t.Phase == sp }) {
				break // a duplicate export
			}
			s.peerPhases = insertPhase(s.peerPhases, report.PhaseTiming{
				Phase: sp, BeginNs: a.int(schema.AttrPhaseBeginNs), EndNs: a.int(schema.AttrPhaseEndNs),
				Bytes: a.int(schema.AttrRAMBytes), Pages: a.int(schema.AttrRAMPages),
			})
		case schema.EventBlackout:
			m.Blackout = &report.Blackout{Ns: a.int(schema.AttrBlackoutNs), ErrorNs: a.int(schema.AttrBlackoutErrorNs)}
		case schema.EventContinuity:
			c := &report.Continuity{
				TSCMonotonic:       a.bool(schema.AttrTSCMonotonic),
				TSCSamples:         a.int(schema.AttrTSCSamples),
				MemoryChecksumOK:   a.bool(schema.AttrMemoryChecksumOK),
				MemoryUnchecked:    !a.has(schema.AttrMemoryChecksumOK),
				DeviceStateMatches: a.bool(schema.AttrDeviceStateMatches),
			}
			if a.has(schema.AttrContinuityErrorNs) {
				v := a.int(schema.AttrContinuityErrorNs)
				c.ErrorNs = &v
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

func addStage(m *report.Migration, a attrReader) error {
	stage, err := schema.ParseStage(a.str(schema.AttrTimeStage))
	if err != nil {
		return fmt.Errorf("%w: span %q event %q: %v", ErrBadAttribute, a.span, a.event, err)
	}
	m.Stages[report.StageIndex(stage)] = report.StageValues{
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

// Migrations returns every side read so far, in start order, or an error
// wrapping report.ErrNoMigrations when no migtrace span was read.
func (r *Reader) Migrations() ([]report.Migration, error) {
	if len(r.sides) == 0 {
		return nil, fmt.Errorf("%w (expected spans named %q or after a phase, with attribute %s; read %d spans in %d lines)",
			report.ErrNoMigrations, schema.SpanMigration, schema.AttrMigrationID, r.stats.Spans, r.stats.Lines)
	}
	out := make([]report.Migration, 0, len(r.sides)+1)
	for k, s := range r.sides {
		if k.role == schema.RoleDestination && len(s.peerPhases) > 0 {
			src := r.sides[sideKey{id: k.id, role: schema.RoleSource}]
			if src == nil || len(src.m.Phases) == 0 {
				out = append(out, peerSource(s, src))
			}
		}
		if k.role == schema.RoleSource && len(s.m.Phases) == 0 && r.hasPeerPhases(k.id) {
			continue // replaced by peerSource above
		}
		m := s.m
		if !s.haveRoot {
			// The root span ends last; a crash can lose it. Start order
			// then comes from the earliest phase span.
			m.StartTime = s.firstPhaseT.AsTime()
		}
		out = append(out, m)
	}
	report.SortByStart(out)
	return out, nil
}

func (r *Reader) hasPeerPhases(id string) bool {
	d := r.sides[sideKey{id: id, role: schema.RoleDestination}]
	return d != nil && len(d.peerPhases) > 0
}

// peerSource rebuilds a source side from what destination dst recorded of
// it; src is the source's own (phase-less) side, if its root span was read.
func peerSource(dst, src *side) report.Migration {
	m := report.Migration{ID: dst.m.ID, Role: schema.RoleSource, TraceID: dst.m.TraceID,
		StartTime: dst.m.StartTime, Result: dst.m.Result, Peer: dst.m.Instance}
	if !dst.haveRoot {
		m.StartTime = dst.firstPhaseT.AsTime()
	}
	if src != nil && src.haveRoot {
		m = src.m
	}
	m.Phases = dst.peerPhases
	if m.DowntimeNs == 0 {
		m.DowntimeNs = dst.peerDowntime
	}
	m.ReportedByPeer = true
	return m
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
