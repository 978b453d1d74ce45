package report_test

import (
	"errors"
	"testing"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/schema"
)

func TestNewStats(t *testing.T) {
	vals := make([]int64, 100)
	for i := range vals {
		vals[i] = int64(100 - i) // 100..1, unsorted
	}
	got := report.NewStats(vals)
	want := report.Stats{Count: 100, P50: 50, P95: 95, P99: 99, Max: 100}
	if got != want {
		t.Errorf("NewStats = %+v, want %+v", got, want)
	}
	if got := report.NewStats([]int64{7}); got != (report.Stats{Count: 1, P50: 7, P95: 7, P99: 7, Max: 7}) {
		t.Errorf("one value: %+v", got)
	}
	if got := report.NewStats(nil); got != (report.Stats{}) {
		t.Errorf("no values: %+v", got)
	}
}

func TestSummarize(t *testing.T) {
	ms := reporttest.Fleet(20, 5)
	ms[0].Result = schema.ResultFailure
	ms[0].Phases[2].Failed = true
	s := report.Summarize(ms)
	if s.Migrations != 20 || s.Sides != 40 || s.Failed != 1 {
		t.Fatalf("counts: %+v", s)
	}
	if s.Downtime.Count != 20 || s.Blackout.Count != 20 {
		t.Errorf("downtime %+v blackout %+v", s.Downtime, s.Blackout)
	}
	slowest := map[schema.Role]schema.Phase{}
	for _, p := range s.Phases {
		if p.Durations.Count != 20 {
			t.Errorf("%s %s: count %d", p.Role, p.Phase, p.Durations.Count)
		}
		if p.Slowest {
			if _, dup := slowest[p.Role]; dup {
				t.Errorf("two slowest phases for %s", p.Role)
			}
			slowest[p.Role] = p.Phase
		}
		if p.Role == schema.RoleSource && p.Phase == ms[0].Phases[2].Phase && p.Failed != 1 {
			t.Errorf("failed count for %s = %d", p.Phase, p.Failed)
		}
	}
	// Pre-copy takes seconds in the fleet; everything else is far shorter.
	if slowest[schema.RoleSource] != schema.PhaseRamPushPrePause || slowest[schema.RoleDestination] != schema.PhaseRamPushPrePause {
		t.Errorf("slowest = %v", slowest)
	}
}

func TestSelect(t *testing.T) {
	ms := reporttest.Fleet(3, 9)
	id := ms[2].ID
	tests := []struct {
		name    string
		sel     report.Selection
		want    int
		wantErr error
	}{
		{"all", report.Selection{}, 6, nil},
		{"role", report.Selection{Role: schema.RoleDestination}, 3, nil},
		{"id", report.Selection{MigrationID: id}, 2, nil},
		{"id and role", report.Selection{MigrationID: id, Role: schema.RoleSource}, 1, nil},
		{"unknown id", report.Selection{MigrationID: "nope"}, 0, report.ErrMigrationNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := report.Select(ms, tt.sel)
			if !errors.Is(err, tt.wantErr) || len(got) != tt.want {
				t.Fatalf("Select = %d sides, %v; want %d, %v", len(got), err, tt.want, tt.wantErr)
			}
			for i := 1; i < len(got); i++ {
				if got[i].StartTime.Before(got[i-1].StartTime) {
					t.Errorf("not in start order")
				}
			}
		})
	}
	if _, err := report.Select(nil, report.Selection{}); !errors.Is(err, report.ErrNoMigrations) {
		t.Errorf("empty input: %v", err)
	}
	noPhases := ms[:1]
	noPhases[0].Phases = nil
	if err := report.RequirePhases(noPhases); !errors.Is(err, report.ErrNoPhases) {
		t.Errorf("RequirePhases: %v", err)
	}
}
