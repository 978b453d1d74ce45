package kvm

import (
	"cmp"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/migtrace/migtrace/migrate/timedata"
)

// ExitSample pairs the guest TSC the guest read just before one of its
// port exits with the host's CLOCK_REALTIME read when the exit reached the
// host. The exit path's latency is in every pair alike, so it cancels
// when intercepts from two hosts are compared.
type ExitSample struct {
	GuestTSC uint64
	Realtime int64 // ns since the Unix epoch
	// RoundTrip is the guest TSC from before the OUT to after it
	// completed, in ticks: the bracket around Realtime. 0 when unknown
	// (the guest was paused at this exit).
	RoundTrip uint64
}

// ContinuityWindow is how many exit samples each side of a migration
// contributes: the source's last ones (carried in the vcpu device state)
// and the destination's first ones after the resume.
const ContinuityWindow = 64

// MinContinuitySamples is the number of samples on each side below which
// a measurement is not Sufficient: the feasibility runs saw errors up to
// 10 µs with 5 samples a side and 0.1 to 2.3 µs with 50.
const MinContinuitySamples = 50

// ContinuityMeasurement compares the guest's TSC jump across a migration
// with the wall-clock time that passed, from bracketed exit samples. A
// sample's intercept is the middle of its bracket (guest TSC before the
// OUT plus half the round trip) minus realtime × frequency. On each side
// the faster half of the samples by round trip is kept (a slow round trip
// means the host was busy and the realtime read sits anywhere in it); the
// error is the median intercept after the migration minus the median
// before, in time. A positive error means the guest TSC ran ahead of the
// wall clock.
type ContinuityMeasurement struct {
	// Before and After are the numbers of bracketed samples on each side.
	Before, After int
	// ErrorNs is the median error, ns.
	ErrorNs float64
	// SpreadNs is the median absolute deviation of the kept intercepts
	// around their side's median, both sides pooled: the jitter of one
	// sample.
	SpreadNs float64
	// RoundTripNs is the median round trip of the kept samples.
	RoundTripNs float64
	// WallNs is the realtime from the last sample before to the first
	// after; GuestTicks is the guest TSC advance between them.
	WallNs     int64
	GuestTicks uint64
	// FreqHz is the guest TSC frequency the intercepts use.
	FreqHz uint64
	// TSCOffsetHonoured says whether the destination host applies TSC
	// offset writes. When it does not, the guest's TSC is the host's and
	// continuity reflects the host TSC, not the migration's adjustment.
	TSCOffsetHonoured bool
}

// Sufficient reports whether both sides have MinContinuitySamples.
func (m ContinuityMeasurement) Sufficient() bool {
	return m.Before >= MinContinuitySamples && m.After >= MinContinuitySamples
}

// String is the one-line summary the demo prints.
func (m ContinuityMeasurement) String() string {
	honoured := "no"
	if m.TSCOffsetHonoured {
		honoured = "yes"
	}
	return fmt.Sprintf("guest TSC continuity: median error %.2f µs over %d samples (TSC offset honoured: %s)",
		m.ErrorNs/1e3, m.Before+m.After, honoured)
}

// MeasureJump computes the continuity error between before (the source's
// samples, oldest first) and after (the destination's), at freq Hz. It
// looks at the last ContinuityWindow samples before and the first after,
// and uses those with a bracket (RoundTrip > 0).
func MeasureJump(before, after []ExitSample, freq uint64) (ContinuityMeasurement, error) {
	if freq == 0 {
		return ContinuityMeasurement{}, fmt.Errorf("measuring continuity: frequency 0")
	}
	before = bracketed(before[len(before)-min(len(before), ContinuityWindow):])
	after = bracketed(after[:min(len(after), ContinuityWindow)])
	if len(before) == 0 || len(after) == 0 {
		return ContinuityMeasurement{}, fmt.Errorf("measuring continuity: %w: %d bracketed samples before, %d after the migration",
			ErrNoSamples, len(before), len(after))
	}
	ref := before[len(before)-1]
	var rtts []float64
	// intercepts returns the faster half's intercepts in ticks, relative
	// to ref so that the arithmetic stays small.
	intercepts := func(samples []ExitSample) ([]float64, error) {
		fast := slices.Clone(samples)
		slices.SortStableFunc(fast, func(a, b ExitSample) int { return cmp.Compare(a.RoundTrip, b.RoundTrip) })
		fast = fast[:(len(fast)+1)/2]
		out := make([]float64, len(fast))
		for i, s := range fast {
			ticks, err := nsToTicks(s.Realtime-ref.Realtime, freq)
			if err != nil {
				return nil, err
			}
			mid := float64(int64(s.GuestTSC-ref.GuestTSC)) + float64(s.RoundTrip)/2
			out[i] = mid - float64(ticks)
			rtts = append(rtts, float64(s.RoundTrip))
		}
		return out, nil
	}
	bi, err := intercepts(before)
	if err != nil {
		return ContinuityMeasurement{}, fmt.Errorf("measuring continuity: %w", err)
	}
	ai, err := intercepts(after)
	if err != nil {
		return ContinuityMeasurement{}, fmt.Errorf("measuring continuity: %w", err)
	}
	bm, am := median(bi), median(ai)
	dev := make([]float64, 0, len(bi)+len(ai))
	for _, v := range bi {
		dev = append(dev, math.Abs(v-bm))
	}
	for _, v := range ai {
		dev = append(dev, math.Abs(v-am))
	}
	toNs := 1e9 / float64(freq)
	return ContinuityMeasurement{
		Before:      len(before),
		After:       len(after),
		ErrorNs:     (am - bm) * toNs,
		SpreadNs:    median(dev) * toNs,
		RoundTripNs: median(rtts) * toNs,
		WallNs:      after[0].Realtime - ref.Realtime,
		GuestTicks:  after[0].GuestTSC - ref.GuestTSC,
		FreqHz:      freq,
	}, nil
}

func bracketed(samples []ExitSample) []ExitSample {
	return slices.DeleteFunc(slices.Clone(samples), func(s ExitSample) bool { return s.RoundTrip == 0 })
}

// nsToTicks converts a signed ns interval to TSC ticks at freq, refusing
// intervals whose tick count overflows an int64.
func nsToTicks(ns int64, freq uint64) (int64, error) {
	mag := uint64(ns)
	if ns < 0 {
		mag = -mag
	}
	sec, rem := mag/timedata.NsPerSec, mag%timedata.NsPerSec
	if freq > math.MaxInt64 || (sec != 0 && sec > math.MaxInt64/2/freq) {
		return 0, fmt.Errorf("samples %d ns apart overflow the tick count at %d Hz", ns, freq)
	}
	hi, lo := bits.Mul64(rem, freq)
	frac, _ := bits.Div64(hi, lo, timedata.NsPerSec) // hi < 1e9: no overflow
	t := int64(sec*freq + frac)
	if ns < 0 {
		return -t, nil
	}
	return t, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
