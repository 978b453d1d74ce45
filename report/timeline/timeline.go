package timeline

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Timeline is one migration laid on one time axis. Every ...Ns position
// is ns since Origin on the source's wall clock.
type Timeline struct {
	MigrationID string
	// Diagnosis is what `report diagnose` says of the migration, in a
	// few lines: the cause of its total time, of its pause, and what to
	// change.
	Diagnosis []string
	// Result is schema.ResultSuccess or ResultFailure when a side recorded
	// it (failure wins), "" when no side's root span was in the input.
	Result      string
	Backend     string
	MemoryBytes int64
	// Origin is the wall-clock instant (source's clock) of position 0: the
	// earliest phase begin of any lane.
	Origin time.Time
	// EndNs is the last position anything is drawn at (bars, blackout
	// with its error bound, downtime).
	EndNs int64
	// Lanes holds the source's lane, then the destination's; a side absent
	// from the input has none.
	Lanes []Lane
	Clock Clock
	// Pause is the source's pause of the guest, where it is known.
	Pause *Instant
	// Blackout runs from the source's pause to the destination's resume
	// (the recorded blackout after the pause); nil when either is unknown.
	Blackout *Interval
	// Downtime runs from the source's pause to its handoff (the recorded
	// downtime after the pause); nil when either is unknown.
	Downtime *Interval
	// Rounds are the pre-copy rounds of RoundsRole (the source's when it
	// recorded any).
	Rounds     []model.PrecopyRound
	RoundsRole schema.Role
	// TimeData holds the destination's time-data stages that were
	// recorded, in stage order, and where its TimeData phase ran.
	TimeData TimeData
	// Failure is where and why the migration failed; nil unless a side
	// failed.
	Failure *Failure
	// Notes say what the picture could not show as recorded, and why.
	Notes []string
}

// Clock is how the destination's wall clock was put on the source's.
type Clock struct {
	// Known: an estimate was recorded and applied. When not, the hosts'
	// wall clocks are taken to agree (as the recorded blackout does).
	Known bool
	// OffsetNs is the destination's wall clock minus the source's,
	// subtracted from every destination time; ErrorNs bounds its error.
	OffsetNs, ErrorNs, RTTNs, Samples int64
	SkewCorrected                     bool
	// Recorded: the destination recorded its clock-offset event at all
	// (false also when there is no destination).
	Recorded bool
}

// Placement says how a lane's monotonic times were put on wall time.
type Placement int

const (
	// PlacedBySpans: by its phase spans' wall-clock start times (median of
	// span start − monotonic begin over the phases).
	PlacedBySpans Placement = iota
	// PlacedByTimeData: a source whose own spans are absent, by the
	// time-data snapshot its destination recorded (the source's hrtime and
	// wall clock read together).
	PlacedByTimeData
	// PlacedBySync: no clock evidence; its Sync phase starts where the
	// destination's does.
	PlacedBySync
	// PlacedByStart: no clock evidence; its first phase begins at the
	// side's recorded start time.
	PlacedByStart
)

// String says how, for the picture's notes.
func (p Placement) String() string {
	switch p {
	case PlacedBySpans:
		return "by its phase spans' wall-clock times"
	case PlacedByTimeData:
		return "by the time-data snapshot (hrtime with wall clock) its destination recorded"
	case PlacedBySync:
		return "without clock evidence: its Sync phase is drawn starting with the destination's"
	case PlacedByStart:
		return "without clock evidence: its first phase is drawn at the side's start time"
	}
	return fmt.Sprintf("Placement(%d)", int(p))
}

// Lane is one side's phases.
type Lane struct {
	Role     schema.Role
	Instance string
	// ReportedByPeer: the source's own spans are not in the input; its
	// phases are what it reported to the destination.
	ReportedByPeer bool
	Placement      Placement
	Result         string
	Bars           []Bar
	// TotalNs is the sum of the phase durations (the tables' TOTAL).
	TotalNs int64
}

// Bar is one phase.
type Bar struct {
	Phase          schema.Phase
	StartNs, EndNs int64
	// DurationNs is the phase's (end − begin) on its host's monotonic
	// clock: the phase table's figure. EndNs − StartNs equals it.
	DurationNs int64
	Pages      int64
	Bytes      int64
	Failed     bool
	Error      string
}

// Instant is a position on the axis and how it was found.
type Instant struct {
	AtNs int64
	// From names the evidence, e.g. "the end of the source's Pause phase".
	From string
}

// Interval is a measured length laid from a position.
type Interval struct {
	StartNs, EndNs int64
	// ErrorNs bounds the end's error (the blackout's clock-offset error);
	// nil when no estimate bounds it or the figure has no such error.
	ErrorNs *int64
}

// Ns is the interval's length.
func (i Interval) Ns() int64 { return i.EndNs - i.StartNs }

// TimeData is the destination's time-data stages.
type TimeData struct {
	// Phase is the destination's TimeData bar, when it ran one.
	Phase  *Bar
	Stages []Stage
	// GuestFreq is the guest TSC frequency (Hz) the stages record.
	GuestFreq uint64
}

// Stage is one time-data stage.
type Stage struct {
	Stage schema.Stage
	// Label is the D script's row label ("Migration", "Propolis",
	// "Kernel").
	Label string
	// AtNs is when the stage's snapshot was taken, in ns after the
	// Migration stage's (the source's read), on the source's clock; valid
	// when Placed.
	AtNs   int64
	Placed bool
	// DurationNs is the stage's duration as the adjustment table prints it.
	DurationNs int64
	GuestTSC   uint64
	// TSCDelta and BootHrtimeDelta are the adjustment from the previous
	// stage (0 for the first). TSCDelta wraps modulo 2^64 as the tables'.
	TSCDelta        uint64
	BootHrtimeDelta int64
	// MigrateDeltaNs (Migration, userspace) and VMMLatencyNs (kernel) are
	// what the adjustment was computed from.
	MigrateDeltaNs int64
	VMMLatencyNs   int64
}

// Failure is where and why a migration failed.
type Failure struct {
	// Phase is the phase the first failing side names.
	Phase string
	Sides []SideFailure
}

// SideFailure is one side's own account of the failure.
type SideFailure struct {
	Role  schema.Role
	Phase string
	Error string
}

// ErrNothingToDraw: a migration's sides hold no phase at all.
var ErrNothingToDraw = errors.New("no phase spans to draw")

// Build lays every migration in ms on its own axis, in the order the
// migrations first appear. It fails when a migration has no phase on any
// side, or when a phase ends before it begins (its bar would be drawn
// backwards as if measured).
func Build(ms []model.Side) ([]Timeline, error) {
	groups := report.ByMigration(ms)
	out := make([]Timeline, 0, len(groups))
	for _, sides := range groups {
		t, err := build(sides)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func build(sides []model.Side) (Timeline, error) {
	var src, dst *model.Side
	t := Timeline{MigrationID: sides[0].ID}
	for i := range sides {
		m := &sides[i]
		switch {
		case m.Role == schema.RoleSource && src == nil:
			src = m
		case m.Role == schema.RoleDestination && dst == nil:
			dst = m
		default:
			t.Notes = append(t.Notes, fmt.Sprintf("a second %s side of this migration is in the input and is not drawn", m.Role))
		}
	}
	drawable := false
	for _, m := range []*model.Side{src, dst} {
		if m == nil {
			continue
		}
		if len(m.Phases) > 0 {
			drawable = true
			if err := report.RequirePhases([]model.Side{*m}); err != nil {
				return t, err
			}
		}
		if t.Backend == "" {
			t.Backend = m.Backend
		}
		if t.MemoryBytes == 0 {
			t.MemoryBytes = m.MemoryBytes
		}
		if m.Result == schema.ResultFailure || t.Result == "" {
			t.Result = m.Result
		}
	}
	if !drawable {
		return t, fmt.Errorf("migration %s: %w (only root spans are in the input)", t.MigrationID, ErrNothingToDraw)
	}
	t.Clock = clockOf(dst)

	// Each side's monotonic clock onto wall ns (absolute, the source's
	// wall clock for both: the destination's shifted by the offset).
	var dstLane, srcLane *placedLane
	if dst != nil {
		dstLane = place(dst, nil, t.Clock)
	}
	if src != nil {
		srcLane = place(src, dst, Clock{})
		if srcLane.placement == PlacedBySync && dstLane != nil {
			if ds, ok := dst.Phase(schema.PhaseSync); ok {
				if ss, ok := src.Phase(schema.PhaseSync); ok {
					srcLane.delta = dstLane.wall(ds.BeginNs) - ss.BeginNs
				}
			}
		}
	}
	origin := int64(0)
	first := true
	for _, l := range []*placedLane{srcLane, dstLane} {
		if l == nil || len(l.m.Phases) == 0 {
			continue
		}
		if w := l.wall(l.m.Phases[0].BeginNs); first || w < origin {
			origin, first = w, false
		}
	}
	t.Origin = time.Unix(0, origin).UTC()
	at := func(l *placedLane, mono int64) int64 { return l.wall(mono) - origin }

	for _, l := range []*placedLane{srcLane, dstLane} {
		if l == nil {
			continue
		}
		lane := Lane{Role: l.m.Role, Instance: l.m.Instance, ReportedByPeer: l.m.ReportedByPeer,
			Placement: l.placement, Result: l.m.Result}
		for _, p := range l.m.Phases {
			lane.Bars = append(lane.Bars, Bar{Phase: p.Phase, StartNs: at(l, p.BeginNs), EndNs: at(l, p.EndNs),
				DurationNs: p.DurationNs(), Pages: p.Pages, Bytes: p.Bytes, Failed: p.Failed, Error: p.Error})
			lane.TotalNs += p.DurationNs()
		}
		if len(lane.Bars) == 0 {
			t.Notes = append(t.Notes, fmt.Sprintf("the %s's phase spans are not in the input, only its root span", l.m.Role))
		} else if l.placement != PlacedBySpans {
			who := "the " + l.m.Role.String()
			if l.m.ReportedByPeer {
				who += " (its own spans are not in the input; its phases as it reported them to the destination)"
			}
			t.Notes = append(t.Notes, who+" is placed "+l.placement.String())
		}
		t.Lanes = append(t.Lanes, lane)
		for _, b := range lane.Bars {
			t.EndNs = max(t.EndNs, b.EndNs)
		}
	}

	if srcLane != nil {
		t.Pause = pauseOf(srcLane, at)
	}
	if t.Pause != nil && dst != nil && dst.Blackout != nil {
		t.Blackout = &Interval{StartNs: t.Pause.AtNs, EndNs: t.Pause.AtNs + dst.Blackout.Ns, ErrorNs: dst.Blackout.ErrorNs}
		end := t.Blackout.EndNs
		if e := t.Blackout.ErrorNs; e != nil {
			end += *e
		}
		t.EndNs = max(t.EndNs, end)
	} else if dst != nil && dst.Blackout != nil {
		t.Notes = append(t.Notes, fmt.Sprintf("blackout %s recorded, but the source's pause is not in the input to draw it from", Dur(dst.Blackout.Ns)))
	}
	if t.Pause != nil && src.DowntimeNs > 0 {
		t.Downtime = &Interval{StartNs: t.Pause.AtNs, EndNs: t.Pause.AtNs + src.DowntimeNs}
		t.EndNs = max(t.EndNs, t.Downtime.EndNs)
	}

	switch {
	case src != nil && len(src.PrecopyRounds) > 0:
		t.Rounds, t.RoundsRole = src.PrecopyRounds, schema.RoleSource
	case dst != nil && len(dst.PrecopyRounds) > 0:
		t.Rounds, t.RoundsRole = dst.PrecopyRounds, schema.RoleDestination
	}
	if dst != nil {
		t.TimeData = timeDataOf(dst, t.Clock)
		for i, l := range t.Lanes {
			if l.Role != schema.RoleDestination {
				continue
			}
			if j := slices.IndexFunc(l.Bars, func(b Bar) bool { return b.Phase == schema.PhaseTimeData }); j >= 0 {
				t.TimeData.Phase = &t.Lanes[i].Bars[j]
			}
		}
	}
	t.Failure = failureOf(src, dst)
	t.Diagnosis = diagnosisLines(report.DiagnoseMigration(sides, report.DiagnoseOptions{}))
	return t, nil
}

// DiagnosisTitle heads the diagnosis box.
const DiagnosisTitle = "Diagnosis (report diagnose)"

func diagnosisLines(d report.Diagnosis) []string {
	lines := []string{
		fmt.Sprintf("Total time %s: %s. %s", Dur(d.TotalNs), d.Cause, d.Why),
	}
	if d.DowntimeCause != "" {
		pause := d.BlackoutNs
		if pause == 0 {
			pause = d.DowntimeNs
		}
		lines = append(lines, fmt.Sprintf("Pause %s: %s. %s", Dur(pause), d.DowntimeCause, d.DowntimeWhy))
	}
	if d.Suggestion != "" {
		lines = append(lines, "Change: "+d.Suggestion)
	}
	return lines
}

func clockOf(dst *model.Side) Clock {
	if dst == nil || dst.ClockOffset == nil {
		return Clock{}
	}
	c := dst.ClockOffset
	if !c.Known() {
		return Clock{Recorded: true}
	}
	return Clock{Known: true, Recorded: true, OffsetNs: c.OffsetNs, ErrorNs: c.ErrorNs, RTTNs: c.RTTNs,
		Samples: c.Samples, SkewCorrected: c.SkewCorrected}
}

// placedLane maps one side's monotonic ns to absolute wall ns on the
// source's clock: mono + delta.
type placedLane struct {
	m         *model.Side
	delta     int64
	placement Placement
}

func (l *placedLane) wall(mono int64) int64 { return mono + l.delta }

// place finds m's monotonic-to-wall mapping. dst, for a source, is its
// destination (whose time data can place it); clock shifts a
// destination's wall clock onto the source's.
func place(m *model.Side, dst *model.Side, clock Clock) *placedLane {
	l := &placedLane{m: m}
	shift := int64(0)
	if m.Role == schema.RoleDestination && clock.Known {
		shift = clock.OffsetNs
	}
	// The median of (span start − monotonic begin) over the phases: each
	// phase is one reading of the two clocks together, and the median
	// ignores one span whose wall time was taken late.
	var ds []int64
	for _, p := range m.Phases {
		if !p.Start.IsZero() {
			ds = append(ds, p.Start.UnixNano()-p.BeginNs)
		}
	}
	if len(ds) > 0 {
		slices.Sort(ds)
		l.delta = ds[(len(ds)-1)/2] - shift
		l.placement = PlacedBySpans
		return l
	}
	if m.Role == schema.RoleSource && dst != nil {
		// The source read hrtime and its wall clock together in its
		// TimeData phase; the destination recorded both as the Migration
		// stage. Trusted only when that hrtime falls inside the source's
		// TimeData phase, i.e. it is the clock the phases were timed with.
		mig := dst.Stage(schema.StageMigration)
		td, ok := m.Phase(schema.PhaseTimeData)
		if mig.Present && ok && dst.Recorded(model.StageAttr(schema.StageMigration, schema.AttrHrtime)) &&
			mig.Hrtime >= td.BeginNs && mig.Hrtime <= td.EndNs {
			if w, err := parseWallclock(mig.Wallclock); err == nil {
				l.delta = w - mig.Hrtime
				l.placement = PlacedByTimeData
				return l
			}
		}
		if _, ok := m.Phase(schema.PhaseSync); ok {
			if _, ok := dst.Phase(schema.PhaseSync); ok {
				l.placement = PlacedBySync // delta set once the destination is placed
				return l
			}
		}
	}
	l.placement = PlacedByStart
	if len(m.Phases) > 0 {
		l.delta = m.StartTime.UnixNano() - m.Phases[0].BeginNs - shift
	}
	return l
}

// pauseOf finds the source's pause: the end of its Pause phase (the VM
// is paused when the phase returns), else the start of RamPushPostPause
// for a side that records no Pause phase.
func pauseOf(l *placedLane, at func(*placedLane, int64) int64) *Instant {
	if p, ok := l.m.Phase(schema.PhasePause); ok {
		return &Instant{AtNs: at(l, p.EndNs), From: "the end of the source's Pause phase"}
	}
	if p, ok := l.m.Phase(schema.PhaseRamPushPostPause); ok {
		return &Instant{AtNs: at(l, p.BeginNs), From: "the start of the source's RamPushPostPause (it records no Pause phase)"}
	}
	return nil
}

func timeDataOf(dst *model.Side, clock Clock) TimeData {
	var td TimeData
	var prev *model.StageValues
	mig := dst.Stage(schema.StageMigration)
	migWall, migErr := parseWallclock(mig.Wallclock)
	for _, st := range schema.Stages {
		v := dst.Stage(st)
		if !v.Present {
			prev = nil
			continue
		}
		if td.GuestFreq == 0 {
			td.GuestFreq = v.GuestFreq
		}
		s := Stage{Stage: st, Label: st.Label(), DurationNs: v.DurationNs, GuestTSC: v.GuestTSC,
			MigrateDeltaNs: v.MigrateDeltaNs, VMMLatencyNs: v.VMMLatencyNs}
		if prev != nil {
			s.TSCDelta, s.BootHrtimeDelta = v.GuestTSC-prev.GuestTSC, v.BootHrtime-prev.BootHrtime
		}
		recorded := func(a string) bool { return dst.Recorded(model.StageAttr(st, a)) }
		switch st {
		case schema.StageMigration:
			s.Placed = migErr == nil
		case schema.StageUserspace:
			// The userspace stage reads the destination's wall clock: on
			// the source's clock it is that less the offset.
			if w, err := parseWallclock(v.Wallclock); err == nil && migErr == nil && recorded(schema.AttrWallclock) {
				s.AtNs, s.Placed = w-clockShift(clock)-migWall, true
			}
		case schema.StageKernel:
			// Its wall clock may repeat userspace's (the VMM keeps it);
			// its hrtime is read at the write, so place it by hrtime.
			usr := dst.Stage(schema.StageUserspace)
			if n := len(td.Stages); n > 0 && td.Stages[n-1].Stage == schema.StageUserspace && td.Stages[n-1].Placed &&
				recorded(schema.AttrHrtime) && dst.Recorded(model.StageAttr(schema.StageUserspace, schema.AttrHrtime)) {
				s.AtNs, s.Placed = td.Stages[n-1].AtNs+(v.Hrtime-usr.Hrtime), true
			}
		}
		td.Stages = append(td.Stages, s)
		prev = &v
	}
	return td
}

func clockShift(c Clock) int64 {
	if c.Known {
		return c.OffsetNs
	}
	return 0
}

func failureOf(src, dst *model.Side) *Failure {
	var f *Failure
	for _, m := range []*model.Side{src, dst} {
		// A source rebuilt from its destination's record carries the
		// destination's result but no error of its own.
		if m == nil || !m.Failed() || (m.ReportedByPeer && m.Error == "") {
			continue
		}
		if f == nil {
			f = &Failure{Phase: m.ErrorPhase}
		}
		if f.Phase == "" {
			f.Phase = m.ErrorPhase
		}
		f.Sides = append(f.Sides, SideFailure{Role: m.Role, Phase: m.ErrorPhase, Error: m.Error})
	}
	return f
}
