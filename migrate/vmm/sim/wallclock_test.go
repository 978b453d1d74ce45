package sim_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/vmm/vmmtest"
)

func wallNs(w timedata.Wallclock) int64 { return int64(w.Sec)*timedata.NsPerSec + int64(w.Nsec) }

// On the real clocks the exported wall clock sits between two readings of
// the system clock taken around it, shifted by the offset, and hrtime is
// not shifted at all. The VM's Clock (what migrate reads for its skew
// estimate) is shifted the same way.
func TestWallclockOffsetOnSystemClock(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration
	}{
		{"ahead 3ms", 3 * time.Millisecond},
		{"behind 3ms", -3 * time.Millisecond},
		{"ahead 2s", 2 * time.Second},
		{"none", 0},
	}
	sys := vmm.SystemClock()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vm := newSim(t, sim.WithWallclockOffset(tc.offset), sim.WithDirtyRate(0))
			off := int64(tc.offset)

			hr0, w0 := sys.Now()
			d, err := vm.ReadTimeData(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			hr1, w1 := sys.Now()
			if got := wallNs(d.Wallclock); got < wallNs(w0)+off || got > wallNs(w1)+off {
				t.Errorf("time data wall clock %s: want within [%d, %d] (system clock %+v)", d.Wallclock, wallNs(w0)+off, wallNs(w1)+off, tc.offset)
			}
			if d.Hrtime < hr0 || d.Hrtime > hr1 {
				t.Errorf("time data hrtime %d: want the unshifted host hrtime within [%d, %d]", d.Hrtime, hr0, hr1)
			}

			_, w2 := sys.Now()
			_, cw := vm.Clock().Now()
			_, w3 := sys.Now()
			if got := wallNs(cw); got < wallNs(w2)+off || got > wallNs(w3)+off {
				t.Errorf("VM clock wall %s: want within [%d, %d]", cw, wallNs(w2)+off, wallNs(w3)+off)
			}
			t.Logf("offset %v: time data wall − system wall ≈ %v", tc.offset, time.Duration(wallNs(d.Wallclock)-(wallNs(w0)+wallNs(w1))/2))
		})
	}
}

// On a manual clock the shift is exact, wraps whatever clock WithClock
// gave, and saturates when the base clock steps so far after New that the
// shift would leave the representable range.
func TestWallclockOffsetOnManualClock(t *testing.T) {
	const hr = int64(5 * time.Second)
	typical := timedata.Wallclock{Sec: 1_700_000_000, Nsec: 999_000_000}
	tests := []struct {
		name   string
		base   timedata.Wallclock
		offset time.Duration
		step   int64 // wall step of the base clock after New, ns
		want   timedata.Wallclock
	}{
		{"ahead 3ms crosses a second", typical, 3 * time.Millisecond, 0, timedata.Wallclock{Sec: 1_700_000_001, Nsec: 2_000_000}},
		{"behind 3ms", typical, -3 * time.Millisecond, 0, timedata.Wallclock{Sec: 1_700_000_000, Nsec: 996_000_000}},
		{"behind, base stepped to the epoch", typical, -time.Second, -(1_700_000_000*timedata.NsPerSec + 999_000_000), timedata.Wallclock{}},
		{"ahead, base stepped to the end", timedata.Wallclock{Sec: math.MaxUint64 - 1}, time.Second, timedata.NsPerSec, timedata.Wallclock{Sec: math.MaxUint64, Nsec: timedata.NsPerSec - 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := vmmtest.NewManualClock(hr, tc.base)
			b, err := sim.New(sim.WithMemory(2<<20), sim.WithDirtyRate(0), sim.WithClock(clock), sim.WithWallclockOffset(tc.offset))
			if err != nil {
				t.Fatal(err)
			}
			clock.StepWall(tc.step)
			vm, err := b.NewVM(vmm.Spec{})
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Destroy()
			gotHr, gotWall := b.Clock().Now()
			if gotHr != hr || gotWall != tc.want {
				t.Errorf("backend clock (%d, %s), want (%d, %s)", gotHr, gotWall, hr, tc.want)
			}
			d, err := vm.ReadTimeData(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if d.Wallclock != tc.want {
				t.Errorf("time data wall clock %s, want %s", d.Wallclock, tc.want)
			}
		})
	}
}

func TestWallclockOffsetRefusedOutOfRange(t *testing.T) {
	tests := []struct {
		name   string
		base   timedata.Wallclock
		offset time.Duration
	}{
		{"before the epoch", timedata.Wallclock{Sec: 100}, -101 * time.Second},
		{"past 2^64 s", timedata.Wallclock{Sec: math.MaxUint64}, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sim.New(sim.WithClock(vmmtest.NewManualClock(0, tc.base)), sim.WithWallclockOffset(tc.offset))
			if err == nil || !strings.Contains(err.Error(), "wall-clock offset") {
				t.Errorf("New: %v, want an error naming the wall-clock offset", err)
			}
		})
	}
}
