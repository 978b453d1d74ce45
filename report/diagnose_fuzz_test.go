package report_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/model"
)

// FuzzDiagnose diagnoses migrations whose numbers are arbitrary — zero,
// negative, inconsistent between the sides — as a corrupt or doctored
// trace holds them: Diagnose must name a known cause with finite
// evidence, never panic or divide by zero into the output.
func FuzzDiagnose(f *testing.F) {
	f.Add(int64(100e3), int64(8), int64(65536), int64(2000), int64(200e6), int64(2200e6), int64(2e6), int64(40), int64(1e6), int64(60e6), int64(0), int64(0))
	f.Add(int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(-1), int64(1))
	f.Add(int64(-5), int64(-1), int64(1), int64(5), int64(-9), int64(1), int64(-2e9), int64(-1), int64(-3), int64(7), int64(100e6), int64(3))
	known := map[report.Cause]bool{}
	for _, r := range report.CauseRules {
		known[r.Cause] = true
	}
	known[report.CauseNotPaused] = true
	f.Fuzz(func(t *testing.T, rtt, probes, pages, dirty, wire, roundNs, postNs, postPages, checksumWait, resume, bandwidth, rounds int64) {
		p := pair{syncNs: 3e6, timeDataNs: 1e6, deviceNs: 1e6, postNs: postNs, postPages: postPages, rttNs: rtt, probes: probes,
			checksumWaitNs: checksumWait, destChecksNs: 500e3, resumeNs: resume}
		for i := range min(max(rounds, 0), 4) {
			p.rounds = append(p.rounds, model.PrecopyRound{Pages: pages >> i, DirtyPages: dirty >> i, WireBytes: wire >> i, RoundNs: roundNs >> i})
		}
		src, dst := p.build()
		opts := report.DiagnoseOptions{}
		if bandwidth != 0 {
			target := time.Duration(bandwidth)
			opts.Assumed = report.Settings{MaxBandwidth: &bandwidth, DowntimeTarget: &target, MaxRounds: &rounds}
		}
		for _, sides := range [][]model.Side{{src, dst}, {src}, {dst}} {
			for _, d := range report.Diagnose(sides, opts) {
				if !known[d.Cause] || !known[d.DowntimeCause] {
					t.Fatalf("unknown cause %q / %q", d.Cause, d.DowntimeCause)
				}
				if d.Why == "" || d.DowntimeWhy == "" {
					t.Fatalf("cause %s / %s without why", d.Cause, d.DowntimeCause)
				}
				for _, s := range []string{d.Why, d.DowntimeWhy, d.Suggestion} {
					if strings.Contains(s, "Inf") || strings.Contains(s, "NaN") {
						t.Fatalf("not a number in %q", s)
					}
				}
				for _, m := range d.Evidence {
					if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
						t.Fatalf("evidence %s = %v", m.Name, m.Value)
					}
				}
				if _, err := d.Evidence.MarshalJSON(); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
