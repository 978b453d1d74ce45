package timedata

import (
	"math"
	"math/bits"
)

// Adjustments records what Adjust did, for logs, events and probes.
type Adjustments struct {
	// GuestUptime is the source's hrtime minus its boot_hrtime, in ns.
	GuestUptime int64 `json:"guest_uptime_ns"`
	// MigrateDelta is the destination wall clock minus the source's, in ns,
	// clamped at 0.
	MigrateDelta int64 `json:"migrate_delta_ns"`
	// MigrateDeltaNegative is set when the destination's wall clock was
	// behind the source's and MigrateDelta was clamped to 0.
	MigrateDeltaNegative bool `json:"migrate_delta_negative"`
	// GuestTSCDelta is the number of guest ticks added to the TSC:
	// ⌊MigrateDelta × GuestFreq / 1e9⌋.
	GuestTSCDelta uint64 `json:"guest_tsc_delta"`
	// BootHrtimeTotal is GuestUptime + MigrateDelta, the amount subtracted
	// from the destination's hrtime to give the new boot_hrtime.
	BootHrtimeTotal int64 `json:"boot_hrtime_total_ns"`
	// BootHrtimeDelta is the new boot_hrtime minus the old one (signed).
	BootHrtimeDelta int64 `json:"boot_hrtime_delta"`
}

// Adjust carries the source's time data to a destination whose host clock
// snapshot reads dstHrtime (monotonic ns) and dstWallclock.
//
// The migration delta is dstWallclock − src.Wallclock, clamped at 0 (and
// flagged) when negative; this assumes the hosts' wall clocks agree, as
// propolis does. The returned Data carries the new guest TSC (old + delta ×
// freq, wrapping at 2^64 on purpose), the new boot_hrtime (dstHrtime −
// (uptime + delta), possibly negative), the unchanged frequency and the
// destination's clocks.
//
// The checks run in propolis's order: destination hrtime, migration delta,
// guest uptime, uptime + delta, new boot_hrtime, then the TSC delta (where
// the frequency is checked). The source hrtime is checked with the
// destination's.
func Adjust(src Data, dstHrtime int64, dstWallclock Wallclock) (Data, Adjustments, error) {
	var adj Adjustments

	if dstHrtime < 0 {
		return Data{}, adj, &AdjustError{Kind: KindInvalidHrtime, Op: "destination hrtime", A: dstHrtime}
	}
	if src.Hrtime < 0 {
		return Data{}, adj, &AdjustError{Kind: KindInvalidHrtime, Op: "source hrtime", A: src.Hrtime}
	}
	if !src.Wallclock.Valid() || !dstWallclock.Valid() {
		return Data{}, adj, &AdjustError{Kind: KindInvalidMigrateDelta, Op: "wall clock nanoseconds >= 1e9",
			Src: src.Wallclock, Dst: dstWallclock}
	}

	mag, negative, ok := dstWallclock.Sub(src.Wallclock)
	switch {
	case negative:
		// A negative delta means the clocks disagree by more than the time
		// the migration took; propolis clamps it and so do we.
		adj.MigrateDelta, adj.MigrateDeltaNegative = 0, true
	case !ok:
		return Data{}, adj, &AdjustError{Kind: KindInvalidMigrateDelta, Op: "delta exceeds int64 ns",
			Src: src.Wallclock, Dst: dstWallclock}
	default:
		adj.MigrateDelta = int64(mag)
	}

	uptime, ok := subInt64(src.Hrtime, src.BootHrtime)
	if !ok {
		return Data{}, adj, &AdjustError{Kind: KindGuestUptimeOverflow, Op: "src_hrt - boot_hrtime",
			A: src.Hrtime, B: src.BootHrtime}
	}
	if uptime < 0 {
		return Data{}, adj, &AdjustError{Kind: KindGuestUptimeOverflow, Op: "src_hrt < boot_hrtime",
			A: src.Hrtime, B: src.BootHrtime}
	}
	adj.GuestUptime = uptime

	total, ok := addInt64(uptime, adj.MigrateDelta)
	if !ok {
		return Data{}, adj, &AdjustError{Kind: KindTimeDeltaOverflow, Op: "uptime + migrate_delta",
			A: uptime, B: adj.MigrateDelta}
	}
	adj.BootHrtimeTotal = total

	newBoot, ok := subInt64(dstHrtime, total)
	if !ok {
		return Data{}, adj, &AdjustError{Kind: KindBootHrtimeOverflow, Op: "dst_hrt - total",
			A: dstHrtime, B: total}
	}
	bootDelta, ok := subInt64(newBoot, src.BootHrtime)
	if !ok {
		return Data{}, adj, &AdjustError{Kind: KindBootHrtimeOverflow, Op: "new boot_hrtime - old",
			A: newBoot, B: src.BootHrtime}
	}
	adj.BootHrtimeDelta = bootDelta

	if src.GuestFreq == 0 {
		return Data{}, adj, &AdjustError{Kind: KindInvalidGuestFreq, Op: "guest frequency is 0"}
	}
	tscDelta, err := TSCDelta(uint64(adj.MigrateDelta)/NsPerSec, uint32(uint64(adj.MigrateDelta)%NsPerSec), src.GuestFreq)
	if err != nil {
		return Data{}, adj, err
	}
	adj.GuestTSCDelta = tscDelta

	return Data{
		GuestFreq:  src.GuestFreq,
		GuestTSC:   src.GuestTSC + tscDelta, // wraps at 2^64 by design
		Hrtime:     dstHrtime,
		Wallclock:  dstWallclock,
		BootHrtime: newBoot,
	}, adj, nil
}

// TSCDelta returns ⌊(sec·1e9 + nsec) × freq / 1e9⌋, the guest ticks elapsed
// in a delta of sec seconds and nsec nanoseconds at freq Hz, computed in 128
// bits with floor division. It fails with a KindTSCAdjustOverflow error when
// the product needs more than 128 bits or the result more than 64.
func TSCDelta(sec uint64, nsec uint32, freq uint64) (uint64, error) {
	if freq == 0 {
		return 0, &AdjustError{Kind: KindInvalidGuestFreq, Op: "guest frequency is 0"}
	}
	// ns = sec·1e9 + nsec as a 128-bit value (hi, lo).
	hi, lo := bits.Mul64(sec, NsPerSec)
	var carry uint64
	lo, carry = bits.Add64(lo, uint64(nsec), 0)
	hi += carry

	// product = ns × freq; it overflows 128 bits when hi×freq does.
	pHi, pLo := bits.Mul64(lo, freq)
	hiHi, hiLo := bits.Mul64(hi, freq)
	pHi, carry = bits.Add64(pHi, hiLo, 0)
	if hiHi != 0 || carry != 0 {
		return 0, &AdjustError{Kind: KindTSCAdjustOverflow, Op: "migrate_delta * guest_hz",
			A: clampInt64(sec), B: clampInt64(freq)}
	}
	// bits.Div64 needs the high word below the divisor, which is exactly
	// the condition for the quotient to fit in 64 bits.
	if pHi >= NsPerSec {
		return 0, &AdjustError{Kind: KindTSCAdjustOverflow, Op: "tsc_adjust > 64-bits",
			A: clampInt64(sec), B: clampInt64(freq)}
	}
	q, _ := bits.Div64(pHi, pLo, NsPerSec)
	return q, nil
}

func clampInt64(v uint64) int64 {
	if v > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(v)
}
