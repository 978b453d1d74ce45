package timeline_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/report/timeline"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// readTrace decodes a trace migrate wrote.
func readTrace(t *testing.T, name string) []model.Side {
	t.Helper()
	r := otlpread.New()
	if err := r.ReadFile(context.Background(), "../otlpread/testdata/"+name); err != nil {
		t.Fatal(err)
	}
	ms, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func side(ms []model.Side, role schema.Role) model.Side {
	for _, m := range ms {
		if m.Role == role && !m.ReportedByPeer {
			return m
		}
	}
	panic("no " + role.String() + " side")
}

func lane(t *testing.T, tl timeline.Timeline, role schema.Role) timeline.Lane {
	t.Helper()
	for _, l := range tl.Lanes {
		if l.Role == role {
			return l
		}
	}
	t.Fatalf("no %s lane", role)
	return timeline.Lane{}
}

func bar(t *testing.T, l timeline.Lane, p schema.Phase) timeline.Bar {
	t.Helper()
	for _, b := range l.Bars {
		if b.Phase == p {
			return b
		}
	}
	t.Fatalf("%s lane has no %s bar", l.Role, p)
	return timeline.Bar{}
}

func build1(t *testing.T, ms ...model.Side) timeline.Timeline {
	t.Helper()
	tls, err := timeline.Build(ms)
	if err != nil {
		t.Fatal(err)
	}
	if len(tls) != 1 {
		t.Fatalf("%d timelines, want 1", len(tls))
	}
	return tls[0]
}

// seedOffsetNs etc. are the seed's recorded figures the layout must carry.
const (
	seedDstEarlyNs = int64(time.Millisecond) // the seed's destination starts 1 ms before the source
	seedOffsetNs   = 2100
	seedBlackoutNs = 330412877
	seedDowntimeNs = 202005646 + 156023
	// The seed's source RamPushPostPause begins this long after its Sync.
	seedPostPauseNs = 17446758114444 - 17437355109672
)

func TestBuild(t *testing.T) {
	sim := readTrace(t, "migrate-sim.jsonl")
	simFull := build1(t, sim...)
	noClock := reporttest.SeedDestination()
	noClock.ClockOffset = &model.ClockOffset{} // no usable sample, as migrate records it
	noClock.Blackout.ErrorNs = nil
	noEvent := reporttest.SeedDestination()
	noEvent.ClockOffset = nil
	noEvent.Blackout.ErrorNs = nil
	// The seed's destination-only trace: its Migration stage's hrtime is
	// from another capture than its phases, so no clock evidence places
	// the source, and the picture must say so.
	seedDst := reporttest.WithSourceReport(reporttest.SeedDestination(), reporttest.SeedSource())

	tests := []struct {
		name  string
		sides []model.Side
		check func(t *testing.T, tl timeline.Timeline)
	}{
		{"seed: destination shifted by the offset", []model.Side{reporttest.SeedSource(), reporttest.SeedDestination()}, func(t *testing.T, tl timeline.Timeline) {
			src, dst := lane(t, tl, schema.RoleSource), lane(t, tl, schema.RoleDestination)
			// The destination's Sync began 1 ms before the source's on its own
			// clock, which runs 2.1 µs ahead: 1.0021 ms before, on the source's.
			if got := bar(t, dst, schema.PhaseSync).StartNs; got != 0 {
				t.Errorf("destination Sync at %d ns, want 0 (the earliest phase)", got)
			}
			if got, want := bar(t, src, schema.PhaseSync).StartNs, seedDstEarlyNs+seedOffsetNs; got != want {
				t.Errorf("source Sync at %d ns, want %d", got, want)
			}
			if !tl.Clock.Known || tl.Clock.OffsetNs != seedOffsetNs || tl.Clock.ErrorNs != 45000 {
				t.Errorf("clock %+v, want offset 2100 ± 45000 ns", tl.Clock)
			}
			if src.Placement != timeline.PlacedBySpans || dst.Placement != timeline.PlacedBySpans {
				t.Errorf("placements %v, %v; want both by spans", src.Placement, dst.Placement)
			}
			// No Pause phase in the seed: the pause is RamPushPostPause's start.
			pause := seedDstEarlyNs + seedOffsetNs + seedPostPauseNs
			if tl.Pause == nil || tl.Pause.AtNs != pause || !strings.Contains(tl.Pause.From, "RamPushPostPause") {
				t.Fatalf("pause %+v, want at %d from RamPushPostPause", tl.Pause, pause)
			}
			if b := tl.Blackout; b == nil || b.StartNs != pause || b.Ns() != seedBlackoutNs || b.ErrorNs == nil || *b.ErrorNs != 45000 {
				t.Errorf("blackout %+v, want %d ns from %d ± 45000", b, seedBlackoutNs, pause)
			}
			if d := tl.Downtime; d == nil || d.StartNs != pause || d.Ns() != seedDowntimeNs {
				t.Errorf("downtime %+v, want %d ns from %d", d, seedDowntimeNs, pause)
			}
			if len(tl.Rounds) != 0 {
				t.Errorf("%d rounds, the seed has none", len(tl.Rounds))
			}
			if n := len(tl.TimeData.Stages); n != 3 {
				t.Fatalf("%d stages, want 3", n)
			}
			usr := tl.TimeData.Stages[1]
			// The userspace snapshot is the destination's wall clock 107582 ns
			// after the source's, less the 2100 ns its clock runs ahead.
			if !usr.Placed || usr.AtNs != reporttest.SeedMigrateDeltaNs-seedOffsetNs || usr.TSCDelta != reporttest.SeedUserTSC-reporttest.SeedSrcGuestTSC {
				t.Errorf("userspace stage %+v", usr)
			}
			// The seed records no kernel hrtime: that mark cannot be placed.
			if k := tl.TimeData.Stages[2]; k.Placed || k.TSCDelta != reporttest.SeedKernelTSC-reporttest.SeedUserTSC {
				t.Errorf("kernel stage %+v, want unplaced with the recorded adjustment", k)
			}
			if tl.Failure != nil || tl.Result != schema.ResultSuccess {
				t.Errorf("result %q, failure %+v", tl.Result, tl.Failure)
			}
		}},
		{"no clock estimate: the clocks taken to agree", []model.Side{reporttest.SeedSource(), noClock}, func(t *testing.T, tl timeline.Timeline) {
			if tl.Clock.Known || !tl.Clock.Recorded {
				t.Errorf("clock %+v, want recorded but not known", tl.Clock)
			}
			if got := bar(t, lane(t, tl, schema.RoleSource), schema.PhaseSync).StartNs; got != seedDstEarlyNs {
				t.Errorf("source Sync at %d ns, want %d (no shift)", got, seedDstEarlyNs)
			}
			if b := tl.Blackout; b == nil || b.ErrorNs != nil {
				t.Errorf("blackout %+v, want one without an error bound", b)
			}
			if !slices.ContainsFunc(tl.Caption(), func(s string) bool { return strings.Contains(s, "assumes the hosts' wall clocks agree") }) {
				t.Errorf("caption does not say the blackout assumes the clocks agree:\n%s", strings.Join(tl.Caption(), "\n"))
			}
		}},
		{"no clock-offset event at all", []model.Side{reporttest.SeedSource(), noEvent}, func(t *testing.T, tl timeline.Timeline) {
			if tl.Clock.Known || tl.Clock.Recorded {
				t.Errorf("clock %+v, want neither recorded nor known", tl.Clock)
			}
		}},
		{"zero rounds: no pre-copy line", []model.Side{reporttest.SeedSource(), reporttest.SeedDestination()}, func(t *testing.T, tl timeline.Timeline) {
			for _, l := range tl.Caption() {
				if strings.Contains(l, "Pre-copy") {
					t.Errorf("caption %q for a trace with no rounds", l)
				}
			}
		}},
		{"destination only, seed: the source aligned by Sync, said so", []model.Side{model.PeerSource(&seedDst, nil), seedDst}, func(t *testing.T, tl timeline.Timeline) {
			src, dst := lane(t, tl, schema.RoleSource), lane(t, tl, schema.RoleDestination)
			if src.Placement != timeline.PlacedBySync {
				t.Fatalf("source placed %v, want by Sync", src.Placement)
			}
			if a, b := bar(t, src, schema.PhaseSync).StartNs, bar(t, dst, schema.PhaseSync).StartNs; a != b {
				t.Errorf("Syncs at %d and %d, want aligned", a, b)
			}
			if !slices.ContainsFunc(tl.Notes, func(s string) bool { return strings.Contains(s, "without clock evidence") }) {
				t.Errorf("notes %q do not say the source is placed without clock evidence", tl.Notes)
			}
		}},
		{"real migration: both sides by their spans", sim, func(t *testing.T, tl timeline.Timeline) {
			src := lane(t, tl, schema.RoleSource)
			for _, l := range tl.Lanes {
				for _, b := range l.Bars {
					if b.EndNs-b.StartNs != b.DurationNs {
						t.Errorf("%s %s: drawn %d ns long, measured %d", l.Role, b.Phase, b.EndNs-b.StartNs, b.DurationNs)
					}
				}
			}
			pause := bar(t, src, schema.PhasePause).EndNs
			if tl.Pause == nil || tl.Pause.AtNs != pause {
				t.Errorf("pause %+v, want the end of the source's Pause at %d", tl.Pause, pause)
			}
			dst := side(sim, schema.RoleDestination)
			if b := tl.Blackout; b == nil || b.Ns() != dst.Blackout.Ns {
				t.Errorf("blackout %+v, want the recorded %d ns", b, dst.Blackout.Ns)
			}
			// The destination resumed the guest in its Finish phase.
			fin := bar(t, lane(t, tl, schema.RoleDestination), schema.PhaseFinish)
			if e := tl.Blackout.EndNs; e < fin.StartNs || e > fin.EndNs {
				t.Errorf("resume at %d ns, outside the destination's Finish [%d, %d]", e, fin.StartNs, fin.EndNs)
			}
			if len(tl.Rounds) != 1 || tl.RoundsRole != schema.RoleSource {
				t.Errorf("rounds %+v of %s, want the source's one", tl.Rounds, tl.RoundsRole)
			}
			for i, s := range tl.TimeData.Stages {
				if !s.Placed || (i > 0 && s.AtNs < tl.TimeData.Stages[i-1].AtNs) {
					t.Errorf("stage %s at %d (placed %v): want placed, in order", s.Label, s.AtNs, s.Placed)
				}
			}
			want := []string{
				"Slowest phase: RamPushPrePause on the destination, 20.8 ms (74% of its 28.0 ms of phases).",
				"Guest blackout 2.60 ms ± 5.77 µs (source's pause to destination's resume) against source downtime 2.59 ms (pause to handoff): the destination resumed the guest 13.8 µs after the handoff.",
				"During the blackout the source spent longest in RamPushPostPause 1.54 ms (59%), Finish 495 µs (19%), TimeData 252 µs (10%).",
				"Pre-copy: 1 round, 4,096 pages sent (4,044 of them zero), 40 still dirty when it stopped.",
			}
			if got := tl.Caption(); !slices.Equal(got, want) {
				t.Errorf("caption:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}},
		{"real migration, destination only: the source placed by its time data", destinationOnly(t, sim), func(t *testing.T, tl timeline.Timeline) {
			src := lane(t, tl, schema.RoleSource)
			if !src.ReportedByPeer || src.Placement != timeline.PlacedByTimeData {
				t.Fatalf("source lane reported by peer %v, placed %v; want by time data", src.ReportedByPeer, src.Placement)
			}
			// Two independent readings of the source's clocks (its spans,
			// its time-data snapshot) put its phases within 2 µs.
			full := lane(t, simFull, schema.RoleSource)
			shift := tl.Origin.Sub(simFull.Origin).Nanoseconds()
			worst := int64(0)
			for i, b := range src.Bars {
				d := b.StartNs + shift - full.Bars[i].StartNs
				if d < -2000 || d > 2000 {
					t.Errorf("%s: %d ns from where its own span puts it", b.Phase, d)
				}
				worst = max(worst, d, -d)
			}
			t.Logf("time-data placement within %d ns of the spans'", worst)
			if !slices.ContainsFunc(tl.Notes, func(s string) bool { return strings.Contains(s, "time-data snapshot") }) {
				t.Errorf("notes %q do not say how the source was placed", tl.Notes)
			}
		}},
		{"failed migration: where and why", readTrace(t, "migrate-sim-failed.jsonl"), func(t *testing.T, tl timeline.Timeline) {
			f := tl.Failure
			if tl.Result != schema.ResultFailure || f == nil || f.Phase != "TimeData" || len(f.Sides) != 2 {
				t.Fatalf("result %q, failure %+v; want TimeData on both sides", tl.Result, f)
			}
			for _, s := range f.Sides {
				if !strings.Contains(s.Error, "TimeData") || s.Phase != "TimeData" {
					t.Errorf("%s: %+v", s.Role, s)
				}
				if b := bar(t, lane(t, tl, s.Role), schema.PhaseTimeData); !b.Failed {
					t.Errorf("%s TimeData bar not marked failed", s.Role)
				}
			}
			if tl.Blackout != nil || tl.Downtime != nil || len(tl.TimeData.Stages) != 0 {
				t.Errorf("blackout %+v, downtime %+v, %d stages: a migration failed in TimeData has none", tl.Blackout, tl.Downtime, len(tl.TimeData.Stages))
			}
			if !slices.Contains(tl.Caption(), "No blackout or downtime recorded: the migration failed before the handoff.") {
				t.Errorf("caption %q", tl.Caption())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, build1(t, tt.sides...))
		})
	}
}

// destinationOnly is the input as a destination-only trace decodes: the
// destination, and the source rebuilt from what it reported.
func destinationOnly(t *testing.T, ms []model.Side) []model.Side {
	t.Helper()
	dst := side(ms, schema.RoleDestination)
	if len(dst.SourcePhases) == 0 {
		t.Fatal("the destination recorded no source phases")
	}
	return []model.Side{model.PeerSource(&dst, nil), dst}
}

func TestBuildRefuses(t *testing.T) {
	reversed := reporttest.SeedSource()
	reversed.Phases[2].EndNs = reversed.Phases[2].BeginNs - 1
	rootOnly := reporttest.SeedSource()
	rootOnly.Phases = nil
	tests := []struct {
		name  string
		sides []model.Side
		want  error
	}{
		{"a phase ending before it begins", []model.Side{reversed}, report.ErrPhaseReversed},
		{"root spans only", []model.Side{rootOnly}, timeline.ErrNothingToDraw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := timeline.Build(tt.sides)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), reporttest.SeedMigrationID) {
				t.Errorf("err = %v, want %v naming the migration", err, tt.want)
			}
		})
	}
}

func TestBuildOnePerMigration(t *testing.T) {
	fleet := reporttest.Fleet(3, 7)
	tls, err := timeline.Build(fleet)
	if err != nil {
		t.Fatal(err)
	}
	if len(tls) != 3 {
		t.Fatalf("%d timelines from 3 migrations", len(tls))
	}
	for i, tl := range tls {
		if tl.MigrationID != fleet[2*i].ID || len(tl.Lanes) != 2 {
			t.Errorf("timeline %d: id %s, %d lanes", i, tl.MigrationID, len(tl.Lanes))
		}
	}
}

func TestDur(t *testing.T) {
	tests := []struct {
		ns   int64
		want string
	}{
		{0, "0 ns"}, {999, "999 ns"}, {1000, "1.00 µs"}, {49877, "49.9 µs"}, {999_960, "1000 µs"},
		{1_000_000, "1.00 ms"}, {14_762_771, "14.8 ms"}, {9_403_004_772, "9.40 s"}, {-1069, "-1.07 µs"},
		{123_456_000_000, "123 s"},
	}
	for _, tt := range tests {
		if got := timeline.Dur(tt.ns); got != tt.want {
			t.Errorf("Dur(%d) = %q, want %q", tt.ns, got, tt.want)
		}
	}
}

func TestCountAndTSCDelta(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want string
	}{{0, "0"}, {999, "999"}, {4096, "4,096"}, {-1234567, "-1,234,567"}} {
		if got := timeline.Count(tt.n); got != tt.want {
			t.Errorf("Count(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := timeline.TSCDelta(176979); got != "+176,979" {
		t.Errorf("TSCDelta(176979) = %q", got)
	}
	if got := timeline.TSCDelta(^uint64(0)); got != "-1" {
		t.Errorf("TSCDelta(2^64-1) = %q, want -1 (a step back, modulo 2^64)", got)
	}
}

// The picture's diagnosis is report diagnose's, not a second opinion.
func TestDiagnosisIsReportDiagnose(t *testing.T) {
	sides := readTrace(t, "migrate-sim.jsonl")
	tls, err := timeline.Build(sides)
	if err != nil {
		t.Fatal(err)
	}
	d := report.DiagnoseMigration(sides, report.DiagnoseOptions{})
	got := tls[0].Diagnosis
	if len(got) < 2 || !strings.Contains(got[0], string(d.Cause)) || !strings.Contains(got[0], d.Why) ||
		!strings.Contains(got[1], string(d.DowntimeCause)) {
		t.Errorf("diagnosis lines %q do not say %s / %s", got, d.Cause, d.DowntimeCause)
	}
}
