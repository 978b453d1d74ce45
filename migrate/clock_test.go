package migrate

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/vmm/vmmtest"
	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// The destination's wall clock runs 2 s ahead of the source's (and its
// hrtime an hour ahead: it booted earlier). The Sync exchange measures the
// offset; with --clock-skew-correction the migration delta, and so the
// TSC adjustment, is the real elapsed time, not the skew.
func TestClockSkewCorrection(t *testing.T) {
	const skew = 2 * time.Second
	for _, correct := range []bool{false, true} {
		name := "uncorrected"
		if correct {
			name = "corrected"
		}
		t.Run(name, func(t *testing.T) {
			p := newPair(t, Config{}, sim.WithMemory(4<<20), sim.WithDirtyRate(0))
			dstClock := vmmtest.NewSkewClock(vmm.SystemClock(), int64(time.Hour), 0)
			dstClock.StepWall(int64(skew))
			dstBackend, err := sim.New(sim.WithMemory(4<<20), sim.WithDirtyRate(0), sim.WithClock(dstClock))
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			id := NewID()
			p.serve(ctx, id, Config{}, nil)
			vm, res, err := RunDestination(ctx, p.dialer(), dstBackend, id, Config{ClockSkewCorrection: correct})
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Destroy()
			if out := <-p.srcRes; out.err != nil {
				t.Fatal(out.err)
			}
			// Source minus destination: −2 s, within the error bound.
			// The model records destination minus source: +2 s.
			if got := time.Duration(res.ClockOffset.OffsetNs); (got - skew).Abs() > time.Duration(res.ClockOffset.ErrorNs)+time.Millisecond {
				t.Errorf("offset estimate %v ± %v, want %v", got, time.Duration(res.ClockOffset.ErrorNs), skew)
			}
			if res.ClockOffset.Samples != DefaultClockProbes {
				t.Errorf("%d clock samples, want %d", res.ClockOffset.Samples, DefaultClockProbes)
			}
			delta := time.Duration(res.Stages[0].MigrateDeltaNs)
			if correct && delta > skew/4 {
				t.Errorf("corrected delta %v still carries the %v skew", delta, skew)
			}
			if !correct && delta < skew {
				t.Errorf("uncorrected delta %v, want at least the %v skew", delta, skew)
			}
			// The blackout is measured across hosts with the offset
			// estimate either way, so the skew never shows in it.
			if b := time.Duration(res.Blackout.Ns); b <= 0 || b > skew/2 {
				t.Errorf("blackout %v with a %v skew", b, skew)
			}
			// The TSC moved by exactly the (corrected or not) delta.
			usr := res.Stages[1]
			want, err := timedata.TSCDelta(uint64(delta/time.Second), uint32(delta%time.Second), usr.GuestFreq)
			if err != nil || usr.GuestTSCDelta != want {
				t.Errorf("TSC delta %d, want %d (%v)", usr.GuestTSCDelta, want, err)
			}
			// report check, which does not share this code, recomputes the
			// same delta from the recorded wall clocks and offset.
			r := report.CheckMigration([]model.Side{*res}, report.Options{})
			if !slices.Contains(r.Verified, report.RuleRef{Rule: report.RuleMigrationDelta, Side: schema.RoleDestination}) {
				t.Errorf("report check did not verify the migration delta: findings %+v, not verified %+v", r.Findings, r.NotVerified)
			}
		})
	}
}
