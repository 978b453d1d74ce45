package report

import (
	"slices"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Stats summarises a set of durations in ns (nearest-rank percentiles).
type Stats struct {
	Count int   `json:"count"`
	P50   int64 `json:"p50_ns"`
	P95   int64 `json:"p95_ns"`
	P99   int64 `json:"p99_ns"`
	Max   int64 `json:"max_ns"`
}

// NewStats sorts values in place and summarises them.
func NewStats(values []int64) Stats {
	if len(values) == 0 {
		return Stats{}
	}
	slices.Sort(values)
	return Stats{
		Count: len(values),
		P50:   percentile(values, 50),
		P95:   percentile(values, 95),
		P99:   percentile(values, 99),
		Max:   values[len(values)-1],
	}
}

// percentile is the nearest-rank percentile of sorted values: the
// smallest value with at least p% of the values at or below it.
func percentile(sorted []int64, p int) int64 {
	rank := (p*len(sorted) + 99) / 100 // ⌈p·n/100⌉
	return sorted[max(rank, 1)-1]
}

// PhaseStats summarises one phase on one side over many migrations.
type PhaseStats struct {
	Role      schema.Role  `json:"-"`
	Phase     schema.Phase `json:"-"`
	Durations Stats        `json:"duration"`
	Failed    int          `json:"failed"`
	// Cancelled counts the runs of the phase an operator's cancel cut
	// short; they are not counted as failed.
	Cancelled int   `json:"cancelled,omitempty"`
	Pages     int64 `json:"pages"`
	Bytes     int64 `json:"bytes"`
	// BytesPerSec is Bytes over the summed duration of the phase runs
	// that moved bytes; 0 when none did.
	BytesPerSec float64 `json:"bytes_per_sec"`
	// Slowest marks the phase with the highest median duration on its side.
	Slowest bool `json:"slowest"`
}

// Summary is Summarize's result.
type Summary struct {
	Migrations int `json:"migrations"` // distinct migration ids
	Sides      int `json:"sides"`
	Failed     int `json:"failed"` // sides whose result is failure
	// Cancelled counts sides an operator cancelled; SettingsChanged the
	// sides whose settings changed in flight, and SettingChanges their
	// changes by setting name.
	Cancelled       int            `json:"cancelled,omitempty"`
	SettingsChanged int            `json:"settings_changed,omitempty"`
	SettingChanges  map[string]int `json:"setting_changes,omitempty"`
	Phases          []PhaseStats   `json:"phases"`   // source then destination, protocol order
	Downtime        Stats          `json:"downtime"` // source: pause to handoff
	Blackout        Stats          `json:"blackout"` // destination: pause to resume across hosts
}

// Summarize aggregates phase durations, RAM volumes, downtime and blackout
// over many migrations.
func Summarize(ms []model.Side) Summary {
	type acc struct {
		durations    []int64
		failed       int
		cancelled    int
		pages, bytes int64
		byteNs       int64
	}
	var accs [schema.RoleDestination + 1][schema.PhaseFinish + 1]acc
	var s Summary
	ids := make(map[string]struct{})
	var downtime, blackout []int64
	for i := range ms {
		m := &ms[i]
		ids[m.ID] = struct{}{}
		s.Sides++
		if m.Result == schema.ResultFailure {
			s.Failed++
		}
		if m.Cancelled() {
			s.Cancelled++
		}
		if len(m.SettingsChanges) > 0 {
			s.SettingsChanged++
			if s.SettingChanges == nil {
				s.SettingChanges = make(map[string]int)
			}
			for _, c := range m.SettingsChanges {
				s.SettingChanges[c.Setting]++
			}
		}
		if m.Role == schema.RoleSource && m.DowntimeNs > 0 {
			downtime = append(downtime, m.DowntimeNs)
		}
		if m.Role == schema.RoleDestination && m.Blackout != nil {
			blackout = append(blackout, m.Blackout.Ns)
		}
		if m.Role != schema.RoleSource && m.Role != schema.RoleDestination {
			continue
		}
		for _, p := range m.Phases {
			if !p.Phase.Valid() {
				continue
			}
			a := &accs[m.Role][p.Phase]
			a.durations = append(a.durations, p.DurationNs())
			switch {
			case p.Failed && m.Cancelled() && p.Phase.String() == m.ErrorPhase:
				a.cancelled++
			case p.Failed:
				a.failed++
			}
			a.pages += p.Pages
			a.bytes += p.Bytes
			if p.Bytes > 0 {
				a.byteNs += p.DurationNs()
			}
		}
	}
	s.Migrations = len(ids)
	for _, role := range []schema.Role{schema.RoleSource, schema.RoleDestination} {
		slowest := -1
		for _, p := range schema.Phases {
			a := &accs[role][p]
			if len(a.durations) == 0 {
				continue
			}
			ps := PhaseStats{Role: role, Phase: p, Durations: NewStats(a.durations),
				Failed: a.failed, Cancelled: a.cancelled, Pages: a.pages, Bytes: a.bytes}
			if a.byteNs > 0 {
				ps.BytesPerSec = float64(a.bytes) * 1e9 / float64(a.byteNs)
			}
			s.Phases = append(s.Phases, ps)
			if slowest < 0 || ps.Durations.P50 > s.Phases[slowest].Durations.P50 {
				slowest = len(s.Phases) - 1
			}
		}
		if slowest >= 0 {
			s.Phases[slowest].Slowest = true
		}
	}
	s.Downtime = NewStats(downtime)
	s.Blackout = NewStats(blackout)
	return s
}
