package report_test

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// pair describes a migration by the durations of its parts; build lays
// them out on both hosts' clocks, consistently with each other the way
// migrate records them.
type pair struct {
	syncNs, timeDataNs, deviceNs, postNs int64
	postPages                            int64
	rounds                               []model.PrecopyRound
	rttNs, probes                        int64
	// The handoff: the source's wait for its memory checksum at Finish,
	// the destination's checks, its resume, and its continuity
	// measurement after it. build adds the round trips between them.
	checksumWaitNs, destChecksNs, resumeNs, afterResumeNs int64
}

const gapNs = 50e3 // between two phases

// healthyPair converges in two rounds over a link of about 100 MB/s.
func healthyPair() pair {
	return pair{
		syncNs: 3e6, timeDataNs: 1e6, deviceNs: 1e6, postNs: 2e6, postPages: 40,
		rounds: []model.PrecopyRound{
			{Round: 0, Pages: 65536, ZeroPages: 13107, Bytes: 52429 * 4096, WireBytes: 52429*4096 + 60e3, DirtyPages: 2000, RoundNs: 2200e6},
			{Round: 1, Pages: 2000, Bytes: 2000 * 4096, WireBytes: 2000*4096 + 3e3, DirtyPages: 100, RoundNs: 85e6},
		},
		rttNs: 100e3, probes: 8,
		checksumWaitNs: 1e6, destChecksNs: 500e3, resumeNs: 100e3, afterResumeNs: 300e3,
	}
}

// build returns the source and destination of p, from the seed's sides
// (their identities, time data and continuity check). Every exchange
// takes at least its round trips.
func (p pair) build() (src, dst model.Side) {
	src, dst = reporttest.SeedSource(), reporttest.SeedDestination()
	const srcT0, dstT0 = int64(1e12), int64(5e12) // each host's own monotonic clock
	t := srcT0
	var phases []model.PhaseTiming
	trips := map[schema.Phase]int64{schema.PhaseSync: p.probes + 2, schema.PhaseRamPushPostPause: 1, schema.PhaseTimeData: 1,
		schema.PhaseDeviceState: 1, schema.PhaseRamPull: 1, schema.PhaseServerState: 1}
	add := func(ph schema.Phase, d int64) model.PhaseTiming {
		d = max(d, trips[ph]*p.rttNs)
		pt := model.PhaseTiming{Phase: ph, BeginNs: t, EndNs: t + d}
		phases = append(phases, pt)
		t += d + gapNs
		return pt
	}
	var pre model.PhaseTiming
	pre.Phase = schema.PhaseRamPushPrePause
	var preNs int64
	for i := range p.rounds {
		r := &p.rounds[i]
		r.Phase = schema.PhaseRamPushPrePause
		r.Round = int64(i)
		r.RoundNs = max(r.RoundNs, p.rttNs)
		pre.Pages += r.Pages
		pre.ZeroPages += r.ZeroPages
		pre.Bytes += r.Bytes
		preNs += r.RoundNs
	}
	pre.Rounds = int64(len(p.rounds))
	add(schema.PhaseSync, p.syncNs)
	pt := add(schema.PhaseRamPushPrePause, preNs)
	pre.BeginNs, pre.EndNs = pt.BeginNs, pt.EndNs
	phases[len(phases)-1] = pre
	pause := add(schema.PhasePause, 40e3)
	add(schema.PhaseRamPushPostPause, p.postNs)
	phases[len(phases)-1].Pages, phases[len(phases)-1].Bytes = p.postPages, p.postPages*4096
	phases[len(phases)-1].Rounds, phases[len(phases)-1].Paused = 1, true
	add(schema.PhaseTimeData, p.timeDataNs)
	add(schema.PhaseDeviceState, p.deviceNs)
	add(schema.PhaseRamPull, 20e3)
	ss := add(schema.PhaseServerState, 60e3)
	// Finish: the checksum wait, Finish out and Okay back around the
	// destination's checks, then Handoff out and Resumed back around its
	// resume.
	add(schema.PhaseFinish, p.checksumWaitNs+p.destChecksNs+p.resumeNs+2*p.rttNs)

	src.Phases = phases
	src.PrecopyRounds = p.rounds
	src.DowntimeNs = (ss.EndNs - pause.EndNs) + p.checksumWaitNs + p.destChecksNs + p.rttNs

	// The destination dials first, ends its pre-copy phase as the paused
	// round begins, and starts Finish as the source's ServerState arrives.
	shift := dstT0 - srcT0
	var dphases []model.PhaseTiming
	for _, ph := range phases {
		if !ph.Phase.Runs(schema.RoleDestination) {
			continue
		}
		ph.BeginNs += shift
		ph.EndNs += shift
		ph.Rounds, ph.Paused = 0, false
		switch ph.Phase {
		case schema.PhaseSync:
			ph.BeginNs -= 1e6
		case schema.PhaseFinish:
			ph.BeginNs = ss.EndNs + shift + p.rttNs/2
			resume := pause.EndNs + shift + src.DowntimeNs + p.rttNs/2 + p.resumeNs
			ph.EndNs = resume + p.afterResumeNs
		}
		dphases = append(dphases, ph)
	}
	dst.Phases = dphases
	dst = reporttest.WithSourceReport(dst, src)
	dst.SourceDowntimeNs = (ss.EndNs - pause.EndNs) + p.checksumWaitNs
	dst.Blackout = &model.Blackout{Ns: src.DowntimeNs + p.rttNs/2 + p.resumeNs}
	dst.ClockOffset = &model.ClockOffset{RTTNs: p.rttNs, Samples: p.probes, ErrorNs: p.rttNs / 2}
	return src, dst
}

func ptr[T any](v T) *T { return &v }

func TestDiagnoseCauses(t *testing.T) {
	tests := []struct {
		name          string
		edit          func(p *pair)
		sides         func(src, dst *model.Side) []model.Side // nil: both
		opts          report.DiagnoseOptions
		cause, pause  report.Cause
		why           string             // in Why
		evidence      map[string]float64 // exact values
		notRecordedIn string
	}{
		{name: "healthy", cause: report.CauseHealthy, pause: report.CauseHealthy, why: "converging in 2 rounds",
			evidence: map[string]float64{"precopy_rounds": 2, "last_round_dirty_ratio": 0.05, "checksum_wait_ns": 1e6, "destination_checks_ns": 600e3, "handoff_to_resume_ns": 150e3}},
		{name: "failed after the pause", sides: func(src, dst *model.Side) []model.Side {
			src.Result, src.Error, src.ErrorPhase = schema.ResultFailure, "exporting device state: boom", "DeviceState"
			src.Phases = src.Phases[:6]
			src.Phases[5].Failed = true
			return []model.Side{*src}
		}, cause: report.CauseFailed, pause: report.CauseFailed, why: "failed in DeviceState: source (in DeviceState): exporting device state: boom"},
		{name: "failed before the pause", sides: func(src, dst *model.Side) []model.Side {
			dst.Result, dst.Error, dst.ErrorPhase = schema.ResultFailure, "checking capacity: too big", "Sync"
			dst.Phases = dst.Phases[:1]
			dst.SourcePhases = nil
			return []model.Side{*dst}
		}, cause: report.CauseFailed, pause: report.CauseNotPaused, why: "failed in Sync"},
		{name: "no result", sides: func(src, dst *model.Side) []model.Side {
			dst.Result, dst.RootMissing = "", true
			return []model.Side{*src, *dst}
		}, cause: report.CauseInsufficient, pause: report.CauseInsufficient, why: "no result recorded for the destination"},
		{name: "phase ends before it begins", sides: func(src, dst *model.Side) []model.Side {
			dst.Phases[2].EndNs = dst.Phases[2].BeginNs - 1
			return []model.Side{*src, *dst}
		}, cause: report.CauseInsufficient, pause: report.CauseInsufficient, why: "RamPushPostPause ends before it begins"},
		{name: "latency-bound", edit: func(p *pair) {
			// 18 round trips of 200 ms, over half of the total.
			p.rttNs = 200e6
		}, cause: report.CauseLatencyBound, pause: report.CauseLatencyBound, why: "18 protocol round trips x RTT 200.0ms",
			evidence: map[string]float64{"round_trips": 18, "rtt_ns": 200e6}},
		{name: "non-converging", edit: func(p *pair) {
			p.rounds = append(p.rounds[:1], model.PrecopyRound{Pages: 60000, Bytes: 60000 * 4096, WireBytes: 60000 * 4096, DirtyPages: 58000, RoundNs: 2000e6},
				model.PrecopyRound{Pages: 58000, Bytes: 58000 * 4096, WireBytes: 58000 * 4096, DirtyPages: 57000, RoundNs: 1950e6})
			p.postPages, p.postNs = 57000, 1900e6
		}, cause: report.CauseNonConverging, pause: report.CauseNonConverging, why: "sent 58000 pages and left 57000 dirty (98%)",
			evidence: map[string]float64{"last_round_dirty_ratio": 0.983, "precopy_rounds": 3, "post_pause_bytes": 57000 * 4096}},
		{name: "non-converging: round limit and target", edit: func(p *pair) {
			p.postPages, p.postNs = 2000, 80e6
		}, opts: report.DiagnoseOptions{Assumed: report.Settings{MaxRounds: ptr(int64(2)), DowntimeTarget: ptr(30 * time.Millisecond)}},
			cause: report.CauseNonConverging, pause: report.CauseNonConverging, why: "hit its limit of 2 rounds",
			evidence: map[string]float64{"max_rounds": 2, "downtime_target_ns": 30e6, "post_pause_ns": 80e6}},
		{name: "link-bound at the cap", opts: report.DiagnoseOptions{Assumed: report.Settings{MaxBandwidth: ptr(int64(100e6))}},
			cause: report.CauseLinkBound, pause: report.CauseHealthy, why: "of the 95.4 MiB/s max bandwidth",
			evidence: map[string]float64{"max_bandwidth_bytes_per_sec": 100e6, "link_utilisation_ratio": 0.976}},
		{name: "link-bound from the rounds", edit: func(p *pair) {
			// Round 1 is long enough to compare with round 0: no zero
			// pages against 20%, the same wire rate.
			p.rounds[0] = model.PrecopyRound{Pages: 65536, ZeroPages: 19661, Bytes: 45875 * 4096, WireBytes: 45875*4096 + 60e3, DirtyPages: 30000, RoundNs: 1920e6}
			p.rounds[1] = model.PrecopyRound{Pages: 30000, Bytes: 30000 * 4096, WireBytes: 30000*4096 + 40e3, DirtyPages: 100, RoundNs: 1260e6}
		}, cause: report.CauseLinkBound, pause: report.CauseHealthy, why: "so the wire (a cap or the link; the max bandwidth is not recorded) set the pace",
			evidence: map[string]float64{"sustained_zero_share_spread_ratio": 0.3, "sustained_wire_rate_spread_ratio": 1.004}},
		{name: "scan-bound", edit: func(p *pair) {
			// Round 0 scans mostly zero pages at 5 MB/s on the wire; round
			// 1 shows the wire carries over 80 MB/s.
			p.rounds[0] = model.PrecopyRound{Pages: 262144, ZeroPages: 259000, Bytes: 3144 * 4096, WireBytes: 3144*4096 + 300e3, DirtyPages: 20000, RoundNs: 2600e6}
			p.rounds[1] = model.PrecopyRound{Pages: 20000, Bytes: 20000 * 4096, WireBytes: 20000*4096 + 3e3, DirtyPages: 100, RoundNs: 900e6}
		}, cause: report.CauseScanBound, pause: report.CauseHealthy, why: "of them zero",
			evidence: map[string]float64{"zero_page_share": 0.918, "off_wire_share": 0.699}},
		{name: "clock-sync", edit: func(p *pair) {
			// 200 probes of 7 ms take over half of a Sync that takes over
			// half the total, yet all 210 round trips under half of it.
			p.rttNs, p.probes, p.syncNs = 7e6, 200, 2600e6
		}, cause: report.CauseClockSync, pause: report.CauseLatencyBound, why: "its 200 clock probes x RTT 7.0ms",
			evidence: map[string]float64{"clock_probes": 200, "clock_probe_ns": 1400e6}},
		{name: "Sync not explained by probes", edit: func(p *pair) { p.syncNs = 5000e6 },
			cause: report.CauseInsufficient, pause: report.CauseHealthy, why: "the rest is not broken down in the trace"},
		{name: "device-state", edit: func(p *pair) { p.deviceNs = 4000e6 },
			cause: report.CauseDeviceState, pause: report.CauseDeviceState, why: "DeviceState took 4.000s"},
		{name: "time-data", edit: func(p *pair) { p.timeDataNs = 4000e6 },
			cause: report.CauseTimeData, pause: report.CauseTimeData, why: "TimeData took 4.000s"},
		{name: "verification-bound", edit: func(p *pair) { p.checksumWaitNs = 3000e6 },
			cause: report.CauseVerificationBound, pause: report.CauseVerificationBound, why: "before the guest resumed",
			evidence: map[string]float64{"checksum_wait_ns": 3000e6, "handoff_checks_ns": 3000e6 + 600e3}},
		{name: "verification-bound, the source alone", edit: func(p *pair) { p.checksumWaitNs = 3000e6 },
			sides: func(src, dst *model.Side) []model.Side { return []model.Side{*src} },
			cause: report.CauseVerificationBound, pause: report.CauseVerificationBound, why: "before the handoff",
			evidence: map[string]float64{"handoff_checks_ns": 3000e6 + 600e3}, notRecordedIn: "RTT"},
		{name: "resume", edit: func(p *pair) { p.resumeNs = 60e6 },
			cause: report.CauseHealthy, pause: report.CauseResume, why: "converging",
			evidence: map[string]float64{"handoff_to_resume_ns": 60e6 + 50e3}},
		{name: "continuity measurement after resume", edit: func(p *pair) { p.afterResumeNs = 4000e6 },
			cause: report.CauseResume, pause: report.CauseHealthy, why: "after the guest resumed"},
		{name: "pause within the target", edit: func(p *pair) { p.deviceNs = 20e6 },
			opts:  report.DiagnoseOptions{Assumed: report.Settings{DowntimeTarget: ptr(50 * time.Millisecond)}},
			cause: report.CauseHealthy, pause: report.CauseHealthy, why: "converging"},
		{name: "final push as planned", edit: func(p *pair) { p.postNs, p.postPages = 40e6, 1000 },
			cause: report.CauseHealthy, pause: report.CauseHealthy, why: "converging",
			evidence: map[string]float64{"post_pause_to_last_round_rate_ratio": 1.062}},
		{name: "final push off the wire", edit: func(p *pair) { p.postNs, p.postPages = 200e6, 1000 },
			cause: report.CauseHealthy, pause: report.CauseScanBound, why: "converging",
			evidence: map[string]float64{"post_pause_off_wire_share": 0.785}},
		{name: "final push, the source's rounds absent", edit: func(p *pair) { p.postNs, p.postPages = 40e6, 1000 },
			sides: func(src, dst *model.Side) []model.Side { return []model.Side{*dst} },
			cause: report.CauseInsufficient, pause: report.CauseInsufficient, why: "the source's pre-copy rounds are not in the input"},
		{name: "the destination alone", sides: func(src, dst *model.Side) []model.Side { return []model.Side{*dst} },
			cause: report.CauseInsufficient, pause: report.CauseHealthy, why: "the source's pre-copy rounds are not in the input",
			notRecordedIn: "the source's pre-copy rounds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := healthyPair()
			if tt.edit != nil {
				tt.edit(&p)
			}
			src, dst := p.build()
			sides := []model.Side{src, dst}
			if tt.sides != nil {
				sides = tt.sides(&src, &dst)
			}
			ds := report.Diagnose(sides, tt.opts)
			if len(ds) != 1 {
				t.Fatalf("%d diagnoses, want 1", len(ds))
			}
			d := ds[0]
			if d.Cause != tt.cause || d.DowntimeCause != tt.pause {
				t.Fatalf("cause %s, downtime %s; want %s, %s\nwhy: %s\ndowntime why: %s\nevidence: %v",
					d.Cause, d.DowntimeCause, tt.cause, tt.pause, d.Why, d.DowntimeWhy, d.Evidence)
			}
			if !strings.Contains(d.Why, tt.why) {
				t.Errorf("why %q lacks %q", d.Why, tt.why)
			}
			for name, want := range tt.evidence {
				got, ok := d.Evidence.Get(name)
				if !ok || math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
					t.Errorf("evidence %s = %v (present %v), want %v", name, got, ok, want)
				}
			}
			if tt.notRecordedIn != "" && !strings.Contains(strings.Join(d.NotRecorded, "; "), tt.notRecordedIn) {
				t.Errorf("not recorded %q lacks %q", d.NotRecorded, tt.notRecordedIn)
			}
			if d.Suggestion == "" {
				t.Error("no suggestion")
			}
			if d.MigrationID != reporttest.SeedMigrationID {
				t.Errorf("migration %q", d.MigrationID)
			}
		})
	}
}

// The times a diagnosis reports are the destination's when its record is
// there, and the settings not given are listed as not recorded.
func TestDiagnoseTimesAndSettings(t *testing.T) {
	src, dst := healthyPair().build()
	d := report.Diagnose([]model.Side{dst, src}, report.DiagnoseOptions{})[0]
	wantTotal := dst.Phases[len(dst.Phases)-1].EndNs - dst.Phases[0].BeginNs
	if d.Role != schema.RoleDestination || d.TotalNs != wantTotal || d.DowntimeNs != src.DowntimeNs || d.BlackoutNs != dst.Blackout.Ns {
		t.Errorf("role %s total %d downtime %d blackout %d; want destination %d %d %d", d.Role, d.TotalNs, d.DowntimeNs, d.BlackoutNs,
			wantTotal, src.DowntimeNs, dst.Blackout.Ns)
	}
	if got := strings.Join(d.NotRecorded, ", "); got != "max bandwidth, downtime target, max rounds" {
		t.Errorf("not recorded: %s", got)
	}
	if len(d.Sides) != 2 || d.Result != schema.ResultSuccess {
		t.Errorf("sides %v result %q", d.Sides, d.Result)
	}

	d = report.Diagnose([]model.Side{src}, report.DiagnoseOptions{})[0]
	wantTotal = src.Phases[len(src.Phases)-1].EndNs - src.Phases[0].BeginNs
	if d.Role != schema.RoleSource || d.TotalNs != wantTotal || d.BlackoutNs != 0 {
		t.Errorf("source alone: role %s total %d blackout %d; want source %d 0", d.Role, d.TotalNs, d.BlackoutNs, wantTotal)
	}
}

// Every cause Diagnose can name has a rule in the help, and the rules
// state their thresholds.
func TestCauseRulesCoverEveryCause(t *testing.T) {
	seen := map[report.Cause]bool{}
	for _, r := range report.CauseRules {
		if seen[r.Cause] {
			t.Errorf("%s listed twice", r.Cause)
		}
		seen[r.Cause] = true
		if r.Rule == "" {
			t.Errorf("%s has no rule", r.Cause)
		}
	}
	for _, c := range []report.Cause{report.CauseHealthy, report.CauseFailed, report.CauseLinkBound, report.CauseNonConverging,
		report.CauseLatencyBound, report.CauseVerificationBound, report.CauseScanBound, report.CauseClockSync,
		report.CauseDeviceState, report.CauseTimeData, report.CauseResume, report.CauseInsufficient} {
		if !seen[c] {
			t.Errorf("no rule for %s", c)
		}
	}
	for c, want := range map[report.Cause]string{report.CauseNonConverging: "90%", report.CauseLinkBound: "80%", report.CauseScanBound: "50ms"} {
		for _, r := range report.CauseRules {
			if r.Cause == c && !strings.Contains(r.Rule, want) {
				t.Errorf("rule of %s lacks its threshold %s: %s", c, want, r.Rule)
			}
		}
	}
}

// The loopback migration migrate recorded (16 MiB, one pre-copy round of
// mostly zero pages, a 4.5 ms blackout) is healthy on both counts, and
// its evidence is what its sides recorded.
func TestDiagnoseRealTrace(t *testing.T) {
	r := otlpread.New()
	if err := r.ReadFile(context.Background(), realTrace); err != nil {
		t.Fatal(err)
	}
	ms, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var src, dst model.Side
	for _, m := range ms {
		if m.Role == schema.RoleSource {
			src = m
		} else {
			dst = m
		}
	}
	ds := report.Diagnose(ms, report.DiagnoseOptions{})
	if len(ds) != 1 {
		t.Fatalf("%d diagnoses, want 1", len(ds))
	}
	d := ds[0]
	if d.Cause != report.CauseHealthy || d.DowntimeCause != report.CauseHealthy {
		t.Fatalf("cause %s (%s), downtime %s (%s); want healthy, healthy", d.Cause, d.Why, d.DowntimeCause, d.DowntimeWhy)
	}
	phase := func(m model.Side, p schema.Phase) model.PhaseTiming {
		t.Helper()
		pt, ok := m.Phase(p)
		if !ok {
			t.Fatalf("%s has no %s", m.Role, p)
		}
		return pt
	}
	last := src.PrecopyRounds[len(src.PrecopyRounds)-1]
	pausedPhases := phase(src, schema.PhaseServerState).EndNs - phase(src, schema.PhasePause).EndNs
	want := map[string]float64{
		"total_ns":               float64(dst.Phases[len(dst.Phases)-1].EndNs - dst.Phases[0].BeginNs),
		"precopy_rounds":         float64(len(src.PrecopyRounds)),
		"last_round_dirty_pages": float64(last.DirtyPages),
		"post_pause_bytes":       float64(phase(src, schema.PhaseRamPushPostPause).Bytes),
		"rtt_ns":                 float64(dst.ClockOffset.RTTNs),
		"round_trips":            float64(dst.ClockOffset.Samples + int64(len(src.PrecopyRounds)) + 8),
		"pause_window_ns":        float64(dst.Blackout.Ns),
		"checksum_wait_ns":       float64(dst.SourceDowntimeNs - pausedPhases),
		"destination_checks_ns":  float64(src.DowntimeNs - dst.SourceDowntimeNs),
		"handoff_to_resume_ns":   float64(dst.Blackout.Ns - src.DowntimeNs),
		"off_wire_share":         0,
	}
	for name, w := range want {
		if got, ok := d.Evidence.Get(name); !ok || got != w {
			t.Errorf("evidence %s = %v (present %v), want %v", name, got, ok, w)
		}
	}
	// The one round converged: it left about 1% of what it sent.
	if got, _ := d.Evidence.Get("last_round_dirty_ratio"); got > 0.015 {
		t.Errorf("last round dirty ratio %v", got)
	}
	if d.TotalNs != int64(want["total_ns"]) || d.DowntimeNs != src.DowntimeNs || d.BlackoutNs != dst.Blackout.Ns {
		t.Errorf("times %d %d %d", d.TotalNs, d.DowntimeNs, d.BlackoutNs)
	}
}

// The capped migrations recorded between two serve processes (see
// cmd/migtrace's TestReportDiagnoseCappedMigrations, which rewrites
// them): the evidence behind each cause is what the source's rounds say.
func TestDiagnoseCappedTraces(t *testing.T) {
	const capRate = 8 << 20 // both ran with --max-bandwidth 8MiB
	for _, tt := range []struct {
		file  string
		cause report.Cause
		check func(t *testing.T, d report.Diagnosis, rounds []model.PrecopyRound)
	}{
		{"link-bound.jsonl", report.CauseLinkBound, func(t *testing.T, d report.Diagnosis, rounds []model.PrecopyRound) {
			// Round 0 carried zero pages, later rounds none, yet the wire
			// rate held: the wire set the pace, at the cap.
			if z, _ := d.Evidence.Get("sustained_zero_share_spread_ratio"); z < 0.25 {
				t.Errorf("zero share spread %v", z)
			}
			if r, _ := d.Evidence.Get("link_bytes_per_sec"); r < 0.8*capRate || r > 1.2*capRate {
				t.Errorf("link rate %v, want about %d", r, capRate)
			}
			d2 := report.Diagnose(readSides(t, "link-bound.jsonl"), report.DiagnoseOptions{Assumed: report.Settings{MaxBandwidth: ptr(int64(capRate))}})[0]
			if u, _ := d2.Evidence.Get("link_utilisation_ratio"); d2.Cause != report.CauseLinkBound || u < 0.8 {
				t.Errorf("against the cap: %s, utilisation %v", d2.Cause, u)
			}
		}},
		{"non-converging.jsonl", report.CauseNonConverging, func(t *testing.T, d report.Diagnosis, rounds []model.PrecopyRound) {
			last := rounds[len(rounds)-1]
			if got, _ := d.Evidence.Get("last_round_dirty_ratio"); got < 0.9 || math.Abs(got-float64(last.DirtyPages)/float64(last.Pages)) > 0.001 {
				t.Errorf("last round dirty ratio %v, round %+v", got, last)
			}
			if d.DowntimeCause != report.CauseNonConverging {
				t.Errorf("downtime cause %s: %s", d.DowntimeCause, d.DowntimeWhy)
			}
		}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			ms := readSides(t, tt.file)
			ds := report.Diagnose(ms, report.DiagnoseOptions{})
			if len(ds) != 1 || ds[0].Cause != tt.cause {
				t.Fatalf("diagnoses %+v, want %s", ds, tt.cause)
			}
			var rounds []model.PrecopyRound
			for _, m := range ms {
				if m.Role == schema.RoleSource {
					rounds = m.PrecopyRounds
				}
			}
			if n, _ := ds[0].Evidence.Get("precopy_rounds"); int(n) != len(rounds) || len(rounds) < 2 {
				t.Fatalf("precopy rounds %v, source recorded %d", n, len(rounds))
			}
			tt.check(t, ds[0], rounds)
		})
	}
}

func readSides(t *testing.T, name string) []model.Side {
	t.Helper()
	r := otlpread.New()
	if err := r.ReadFile(context.Background(), filepath.Join("testdata", "diagnose", name)); err != nil {
		t.Fatal(err)
	}
	ms, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}
