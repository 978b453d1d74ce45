package wire_test

import (
	"errors"
	"math"
	"testing"

	"github.com/migtrace/migtrace/migrate/wire"
)

const ms = int64(1_000_000)

// exchange builds the sample a probe produces when the source's clock is
// skew ns ahead, the probe takes out ns, the source holds it hold ns, and
// the reply takes back ns.
func exchange(t1, skew, out, hold, back int64) wire.ClockSample {
	t2 := t1 + out + skew
	t3 := t2 + hold
	t4 := t3 - skew + back
	return wire.ClockSample{T1: t1, T2: t2, T3: t3, T4: t4}
}

func TestEstimateOffset(t *testing.T) {
	const t0 = 1_700_000_000 * 1_000_000_000
	tests := []struct {
		name    string
		samples []wire.ClockSample
		want    wire.ClockEstimate
	}{
		{"no skew", []wire.ClockSample{exchange(t0, 0, ms, 0, ms)},
			wire.ClockEstimate{OffsetNs: 0, ErrorBoundNs: ms, RTTNs: 2 * ms, Samples: 1}},
		{"source 5 ms ahead", []wire.ClockSample{exchange(t0, 5*ms, ms, 100_000, ms)},
			wire.ClockEstimate{OffsetNs: 5 * ms, ErrorBoundNs: ms, RTTNs: 2 * ms, Samples: 1}},
		{"source 3 s behind", []wire.ClockSample{exchange(t0, -3000*ms, 2*ms, 0, 2*ms)},
			wire.ClockEstimate{OffsetNs: -3000 * ms, ErrorBoundNs: 2 * ms, RTTNs: 4 * ms, Samples: 1}},
		// All delay on the way out: the estimate is off by half the delay,
		// exactly the bound.
		{"asymmetric path", []wire.ClockSample{exchange(t0, 7*ms, 2*ms, 0, 0)},
			wire.ClockEstimate{OffsetNs: 8 * ms, ErrorBoundNs: ms, RTTNs: 2 * ms, Samples: 1}},
		{"minimum delay wins", []wire.ClockSample{
			exchange(t0, 5*ms, 10*ms, 0, 2*ms),
			exchange(t0+50*ms, 5*ms, ms/2, 3*ms, ms/2),
			exchange(t0+90*ms, 5*ms, 4*ms, 0, 4*ms),
		}, wire.ClockEstimate{OffsetNs: 5 * ms, ErrorBoundNs: ms / 2, RTTNs: ms, Samples: 3}},
		{"odd delay rounds the bound up", []wire.ClockSample{exchange(t0, 0, 1, 0, 2)},
			wire.ClockEstimate{OffsetNs: 0, ErrorBoundNs: 2, RTTNs: 3, Samples: 1}},
		{"invalid samples are skipped", []wire.ClockSample{
			{T1: t0, T2: t0 + 10, T3: t0 + 5, T4: t0 + 20},  // T3 < T2
			{T1: t0, T2: t0 + 1, T3: t0 + 100, T4: t0 + 50}, // negative delay
			exchange(t0, ms, ms, 0, ms),
		}, wire.ClockEstimate{OffsetNs: ms, ErrorBoundNs: ms, RTTNs: 2 * ms, Samples: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.EstimateOffset(tt.samples)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Whatever the split of the delay between the two directions, the true
// skew lies within the bound of the estimate.
func TestEstimateOffsetBoundHolds(t *testing.T) {
	for _, skew := range []int64{-9 * ms, 0, 1, 123_456_789} {
		for out := int64(0); out <= 10; out++ {
			s := exchange(1e18, skew, out*100_000, 20_000, (10-out)*100_000)
			est, err := wire.EstimateOffset([]wire.ClockSample{s})
			if err != nil {
				t.Fatal(err)
			}
			if d := est.OffsetNs - skew; d > est.ErrorBoundNs || -d > est.ErrorBoundNs {
				t.Fatalf("skew %d, out %d: estimate %d ± %d misses", skew, out, est.OffsetNs, est.ErrorBoundNs)
			}
		}
	}
}

func TestEstimateOffsetErrors(t *testing.T) {
	tests := []struct {
		name    string
		samples []wire.ClockSample
	}{
		{"none", nil},
		{"reply before receipt", []wire.ClockSample{{T1: 0, T2: 10, T3: 9, T4: 20}}},
		{"negative delay", []wire.ClockSample{{T1: 100, T2: 0, T3: 50, T4: 120}}},
		{"overflow", []wire.ClockSample{{T1: math.MinInt64, T2: math.MaxInt64, T3: math.MaxInt64, T4: 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := wire.EstimateOffset(tt.samples); !errors.Is(err, wire.ErrNoClockSample) {
				t.Fatalf("err = %v, want ErrNoClockSample", err)
			}
		})
	}
}

func FuzzEstimateOffset(f *testing.F) {
	f.Add(int64(0), int64(5), int64(6), int64(3))
	f.Add(int64(math.MinInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(0))
	f.Fuzz(func(t *testing.T, t1, t2, t3, t4 int64) {
		est, err := wire.EstimateOffset([]wire.ClockSample{{T1: t1, T2: t2, T3: t3, T4: t4}})
		if err != nil {
			if !errors.Is(err, wire.ErrNoClockSample) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if est.RTTNs < 0 || est.ErrorBoundNs < 0 || 2*est.ErrorBoundNs < est.RTTNs || est.Samples != 1 {
			t.Fatalf("inconsistent estimate %+v", est)
		}
	})
}
