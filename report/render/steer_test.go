package render_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// steered is the seed's source, its bandwidth raised a second in and
// then cancelled in the pre-copy.
func steered() model.Side {
	m := reporttest.SeedSource()
	m.Result, m.ErrorPhase, m.Error = schema.ResultCancelled, "RamPushPrePause", "migration cancelled"
	m.CancelledBy = "dst (127.0.0.1:7002) for cli at 127.0.0.1:5555"
	m.Phases, m.TimeRead, m.DowntimeNs = m.Phases[:2], nil, 0
	m.Phases[1].Failed, m.Phases[1].Error = true, m.Error
	m.Settings = &model.Settings{MaxBandwidth: 2 << 20, DowntimeTargetNs: 30e6, MaxRounds: 12}
	m.SettingsChanges = []model.SettingChange{{Time: m.StartTime.Add(1500 * time.Millisecond), Setting: schema.SettingMaxBandwidth,
		Old: 2 << 20, New: 1 << 30, Phase: schema.PhaseRamPushPrePause, By: "cli"}}
	return m
}

// The phase tables say how an operator steered a migration under the
// table, and in a multi-table heading; a migration left alone gets
// neither, so the D script's layout is kept byte for byte.
func TestPhasesShowSteering(t *testing.T) {
	for _, tc := range []struct {
		name string
		ms   []model.Side
		f    render.Format
		want []string
		not  []string
	}{
		{"dtrace", []model.Side{steered()}, render.FormatDTrace, []string{
			"SETTING CHANGED at +1.5s in RamPushPrePause: max_bandwidth 2 MiB/s -> 1 GiB/s by cli\n",
			"CANCELLED in RamPushPrePause by dst (127.0.0.1:7002) for cli at 127.0.0.1:5555\n"}, nil},
		{"table", []model.Side{steered()}, render.FormatTable, []string{"CANCELLED", "SETTING CHANGED at +1.5s"}, []string{"FAILED"}},
		{"heading", []model.Side{steered(), reporttest.SeedDestination()}, render.FormatDTrace,
			[]string{"migration " + steered().ID + " source (cancelled)\n", "migration " + steered().ID + " destination\n"}, nil},
		{"left alone", []model.Side{reporttest.SeedSource()}, render.FormatDTrace, nil, []string{"CANCELLED", "SETTING"}},
		{"json", []model.Side{steered()}, render.FormatJSON, []string{`"cancelled": {`, `"after_ns": 1500000000`, `"max_bandwidth": 2097152`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Phases(&b, tc.ms, tc.f); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("has %q:\n%s", n, b.String())
				}
			}
		})
	}
}

// The summary counts cancelled sides apart from failed ones, and the
// phase they were cancelled in, and the settings changed in flight.
func TestSummaryCountsSteering(t *testing.T) {
	failed := reporttest.SeedDestination()
	failed.Result, failed.ErrorPhase = schema.ResultFailure, "TimeData"
	failed.Phases = failed.Phases[:4]
	failed.Phases[3].Failed = true
	s := report.Summarize([]model.Side{steered(), failed})
	if s.Cancelled != 1 || s.Failed != 1 || s.SettingsChanged != 1 || s.SettingChanges[schema.SettingMaxBandwidth] != 1 {
		t.Errorf("summary: cancelled %d, failed %d, settings changed %d %v; want 1, 1, 1 max_bandwidth", s.Cancelled, s.Failed, s.SettingsChanged, s.SettingChanges)
	}
	for _, p := range s.Phases {
		if p.Role == schema.RoleSource && p.Phase == schema.PhaseRamPushPrePause && (p.Cancelled != 1 || p.Failed != 0) {
			t.Errorf("source RamPushPrePause: %d cancelled, %d failed; want 1 and 0", p.Cancelled, p.Failed)
		}
	}
	var b bytes.Buffer
	if err := render.Summary(&b, s, render.FormatTable); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"(2 sides, 1 failed, 1 cancelled)", "settings changed in flight on 1 sides: max_bandwidth ×1", "1 cancelled"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, b.String())
		}
	}
}
