package wire

import (
	"errors"
	"fmt"
	"math"
)

// ClockSample is one NTP-style exchange, all wall clocks in Unix ns:
// T1 destination sends the probe, T2 source receives it, T3 source sends
// the reply, T4 destination receives it.
type ClockSample struct {
	T1, T2, T3, T4 int64
}

// Delay is the round trip minus the source's processing time,
// (T4−T1) − (T3−T2). ok is false if a difference overflows.
func (s ClockSample) Delay() (delay int64, ok bool) {
	rtt, ok1 := sub64(s.T4, s.T1)
	proc, ok2 := sub64(s.T3, s.T2)
	if !ok1 || !ok2 {
		return 0, false
	}
	return sub64(rtt, proc)
}

// Offset is ((T2−T1) + (T3−T4)) / 2: how far the source's wall clock is
// ahead of the destination's. ok is false if a difference overflows.
func (s ClockSample) Offset() (offset int64, ok bool) {
	a, ok1 := sub64(s.T2, s.T1)
	b, ok2 := sub64(s.T3, s.T4)
	if !ok1 || !ok2 {
		return 0, false
	}
	if sum := a + b; (b >= 0) == (sum >= a) {
		return sum / 2, true
	}
	// The sum overflows, so halve first (off by at most 1 ns).
	return a/2 + b/2 + (a%2+b%2)/2, true
}

// ClockEstimate is the wall-clock offset between the two hosts.
type ClockEstimate struct {
	// OffsetNs is how far the SOURCE's wall clock is ahead of the
	// destination's: source_wall − destination_wall at the same instant.
	// To express a source wall time on the destination's clock, subtract it.
	OffsetNs int64
	// ErrorBoundNs bounds |true offset − OffsetNs|: half the kept sample's
	// delay, assuming each clock ran at a steady rate during the exchange.
	ErrorBoundNs int64
	// RTTNs is the kept sample's delay (network round trip minus the
	// source's processing time).
	RTTNs int64
	// Samples is how many valid samples were considered.
	Samples int
}

// EstimateOffset keeps the sample with the smallest delay, the one least
// disturbed by queueing, and returns its offset with an error bound of half
// that delay. Samples with T3 < T2, a negative delay or overflowing
// differences are skipped; if none remains the error (ErrNoClockSample)
// says why each was refused.
func EstimateOffset(samples []ClockSample) (ClockEstimate, error) {
	var (
		best    ClockEstimate
		valid   int
		refused []error
	)
	best.RTTNs = math.MaxInt64
	for i, s := range samples {
		if s.T3 < s.T2 {
			refused = append(refused, fmt.Errorf("sample %d: source replied (T3=%d) before it received (T2=%d)", i, s.T3, s.T2))
			continue
		}
		delay, ok := s.Delay()
		if !ok {
			refused = append(refused, fmt.Errorf("sample %d: delay overflows", i))
			continue
		}
		if delay < 0 {
			refused = append(refused, fmt.Errorf("sample %d: negative delay %d ns", i, delay))
			continue
		}
		offset, ok := s.Offset()
		if !ok {
			refused = append(refused, fmt.Errorf("sample %d: offset overflows", i))
			continue
		}
		valid++
		if delay < best.RTTNs {
			best = ClockEstimate{OffsetNs: offset, ErrorBoundNs: delay / 2, RTTNs: delay}
		}
	}
	if valid == 0 {
		if len(samples) == 0 {
			return ClockEstimate{}, fmt.Errorf("estimating clock offset: no samples: %w", ErrNoClockSample)
		}
		return ClockEstimate{}, fmt.Errorf("estimating clock offset: %w: %w", ErrNoClockSample, errors.Join(refused...))
	}
	// Round the bound up: an odd delay's half must still cover the truth.
	best.ErrorBoundNs = best.RTTNs/2 + best.RTTNs%2
	best.Samples = valid
	return best, nil
}

func sub64(a, b int64) (int64, bool) {
	c := a - b
	if (b > 0 && c > a) || (b < 0 && c < a) {
		return 0, false
	}
	return c, true
}
