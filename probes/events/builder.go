package events

import "github.com/migtrace/migtrace/tracing/schema"

// Migration is one side of one migration as its probes told it.
type Migration struct {
	ID     MigrationID `json:"id"`
	PID    uint32      `json:"pid"`
	Role   string      `json:"role"`
	Failed bool        `json:"failed"`
	// BeginTS and EndTS are the MigrationBegin/End hits (CLOCK_MONOTONIC ns).
	BeginTS uint64 `json:"begin_ts"`
	EndTS   uint64 `json:"end_ts"`
	// Phases holds the measured phases (a begin and an end were both seen)
	// in the order they began.
	Phases []Phase `json:"phases"`
	// Unmatched lists phases that ended without a begin or began without an
	// end: the D script's "could not be measured".
	Unmatched []string `json:"unmatched,omitempty"`
	// RAM totals over the whole migration, split like the D script's
	// summary by whether the VM was paused.
	Unpaused RAMTotal `json:"unpaused"`
	Paused   RAMTotal `json:"paused"`
	// Stages are the destination's time-data stages, in the order seen.
	Stages []Stage `json:"stages,omitempty"`

	role schema.Role
	open []int // indexes into Phases of phases begun and not yet ended
}

// RoleValue returns the side as a schema.Role.
func (m *Migration) RoleValue() schema.Role { return m.role }

// Phase is one measured phase. BeginNs and EndNs are the hrtime arguments
// of PhaseBegin/PhaseEnd, the host's CLOCK_MONOTONIC.
type Phase struct {
	Phase   string `json:"phase"`
	BeginNs int64  `json:"begin_ns"`
	EndNs   int64  `json:"end_ns"`
	Failed  bool   `json:"failed,omitempty"`
	// RAM moved while this phase was the innermost open one.
	RAM    RAMTotal `json:"ram"`
	Paused bool     `json:"ram_paused,omitempty"`

	phase schema.Phase
	ended bool
}

// PhaseValue returns the phase as a schema.Phase.
func (p *Phase) PhaseValue() schema.Phase { return p.phase }

// DurationNs is EndNs − BeginNs.
func (p *Phase) DurationNs() int64 { return p.EndNs - p.BeginNs }

// RAMTotal counts pages and payload bytes.
type RAMTotal struct {
	Pages uint64 `json:"pages"`
	Bytes uint64 `json:"bytes"`
}

// Stage is one TimeStage event.
type Stage struct {
	Stage          string `json:"stage"`
	Timestamp      uint64 `json:"ts"`
	GuestFreq      uint64 `json:"guest_freq_hz"`
	GuestTSC       uint64 `json:"guest_tsc"`
	BootHrtime     int64  `json:"boot_hrtime"`
	DurationNs     int64  `json:"duration_ns"`
	UptimeNs       int64  `json:"guest_uptime_ns"`
	MigrateDeltaNs int64  `json:"migrate_delta_ns"`
	Negative       bool   `json:"migrate_delta_negative,omitempty"`

	stage schema.Stage
}

// StageValue returns the stage as a schema.Stage.
func (s *Stage) StageValue() schema.Stage { return s.stage }

type sideKey struct {
	pid  uint32
	role schema.Role
}

// Builder assembles events, fed in timestamp order, into migrations. The
// zero value is not ready; use NewBuilder.
type Builder struct {
	open    map[sideKey]*Migration
	dropped int
}

// NewBuilder returns an empty Builder.
func NewBuilder() *Builder { return &Builder{open: map[sideKey]*Migration{}} }

// Dropped counts events that belonged to no open migration.
func (b *Builder) Dropped() int { return b.dropped }

// Add takes the next event. When it ends a migration, Add returns it.
func (b *Builder) Add(e Event) *Migration {
	switch e := e.(type) {
	case MigrationBegin:
		k := sideKey{e.PID, e.Role}
		if old := b.open[k]; old != nil {
			b.dropped++ // a migration that never ended; the new one replaces it
		}
		b.open[k] = &Migration{ID: e.ID, PID: e.PID, Role: e.Role.String(), role: e.Role, BeginTS: e.Timestamp}
	case MigrationEnd:
		k := sideKey{e.PID, e.Role}
		m := b.open[k]
		if m == nil || m.ID != e.ID {
			b.dropped++
			return nil
		}
		delete(b.open, k)
		m.Failed, m.EndTS = e.Failed, e.Timestamp
		for _, i := range m.open {
			m.Unmatched = append(m.Unmatched, m.Phases[i].Phase)
		}
		m.Phases = measured(m.Phases)
		m.open = nil
		return m
	case PhaseBegin:
		m := b.side(e.PID, e.Role)
		if m == nil {
			return nil
		}
		m.open = append(m.open, len(m.Phases))
		m.Phases = append(m.Phases, Phase{Phase: e.Phase.String(), phase: e.Phase, BeginNs: e.Hrtime})
	case PhaseEnd:
		m := b.side(e.PID, e.Role)
		if m == nil {
			return nil
		}
		for j := len(m.open) - 1; j >= 0; j-- {
			p := &m.Phases[m.open[j]]
			if p.phase == e.Phase {
				p.EndNs, p.Failed, p.ended = e.Hrtime, e.Failed, true
				m.open = append(m.open[:j], m.open[j+1:]...)
				return nil
			}
		}
		m.Unmatched = append(m.Unmatched, e.Phase.String())
	case RAMRegion:
		m := b.side(e.PID, e.Role)
		if m == nil {
			return nil
		}
		total := &m.Unpaused
		if e.Paused {
			total = &m.Paused
		}
		total.Pages += e.Pages
		total.Bytes += e.Bytes
		if n := len(m.open); n > 0 {
			p := &m.Phases[m.open[n-1]]
			p.RAM.Pages += e.Pages
			p.RAM.Bytes += e.Bytes
			p.Paused = p.Paused || e.Paused
		}
	case TimeStage:
		// Only the destination records time data.
		m := b.side(e.PID, schema.RoleDestination)
		if m == nil {
			return nil
		}
		m.Stages = append(m.Stages, Stage{Stage: e.Stage.String(), stage: e.Stage, Timestamp: e.Timestamp,
			GuestFreq: e.GuestFreq, GuestTSC: e.GuestTSC, BootHrtime: e.BootHrtime, DurationNs: e.DurationNs,
			UptimeNs: e.UptimeNs, MigrateDeltaNs: e.MigrateDeltaNs, Negative: e.Negative})
	}
	return nil
}

func (b *Builder) side(pid uint32, role schema.Role) *Migration {
	m := b.open[sideKey{pid, role}]
	if m == nil {
		b.dropped++
	}
	return m
}

// measured keeps the phases that both began and ended.
func measured(ps []Phase) []Phase {
	out := ps[:0]
	for _, p := range ps {
		if p.ended {
			out = append(out, p)
		}
	}
	return out
}
