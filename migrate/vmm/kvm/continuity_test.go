package kvm

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// synthetic makes n bracketed samples of a guest whose TSC runs at freq
// and reads offsetTicks ahead of realtime×freq, one exit per ms from
// realtime start, each exit path taking latency ns and each round trip
// twice that; every fourth sample is slowed by a busy host.
func synthetic(n int, start int64, freq uint64, offsetTicks int64, latency int64) []ExitSample {
	out := make([]ExitSample, n)
	for i := range out {
		r := start + int64(i)*1_000_000
		lat := latency
		if i%4 == 3 {
			lat *= 20
		}
		ticks, _ := nsToTicks(r-lat, freq)
		rt, _ := nsToTicks(2*lat, freq)
		out[i] = ExitSample{GuestTSC: uint64(ticks + offsetTicks), Realtime: r, RoundTrip: uint64(rt)}
	}
	return out
}

func TestMeasureJump(t *testing.T) {
	const freq = 2_445_402_000
	const start = 1_795_675_336_000_000_000
	tests := []struct {
		name           string
		before, after  []ExitSample
		wantErrorNs    float64
		wantSufficient bool
	}{
		{"continuous", synthetic(64, start, freq, 1000, 15_000), synthetic(64, start+2e9, freq, 1000, 15_000), 0, true},
		{"guest 5 µs ahead", synthetic(64, start, freq, 1000, 15_000),
			synthetic(64, start+2e9, freq, 1000+12227, 15_000), 5000, true},
		{"guest 1 ms behind, slower exits after", synthetic(64, start, freq, 0, 10_000),
			synthetic(64, start+3e9, freq, -2_445_402, 30_000), -1e6, true},
		{"few samples", synthetic(6, start, freq, 0, 15_000), synthetic(6, start+1e9, freq, 0, 15_000), 0, false},
		{"long windows use the last and first 64", synthetic(300, start, freq, 0, 15_000), synthetic(300, start+1e9, freq, 0, 15_000), 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := MeasureJump(tc.before, tc.after, freq)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(m.ErrorNs-tc.wantErrorNs) > 1 {
				t.Errorf("error %.1f ns, want %.1f", m.ErrorNs, tc.wantErrorNs)
			}
			if m.Sufficient() != tc.wantSufficient {
				t.Errorf("sufficient %v with %d+%d samples", m.Sufficient(), m.Before, m.After)
			}
			if m.Before > ContinuityWindow || m.After > ContinuityWindow {
				t.Errorf("used %d+%d samples, window %d", m.Before, m.After, ContinuityWindow)
			}
		})
	}
}

func TestMeasureJumpRefuses(t *testing.T) {
	ok := synthetic(10, 1e18, 1e9, 0, 1000)
	unbracketed := []ExitSample{{GuestTSC: 5, Realtime: 5}}
	tests := []struct {
		name          string
		before, after []ExitSample
		freq          uint64
		want          error
	}{
		{"no samples before", nil, ok, 1e9, ErrNoSamples},
		{"no samples after", ok, nil, 1e9, ErrNoSamples},
		{"no brackets", unbracketed, ok, 1e9, ErrNoSamples},
		{"frequency 0", ok, ok, 0, nil},
		{"realtime centuries apart", ok, synthetic(10, -1e18, 1e9, 0, 1000), 1e10, nil},
	}
	for _, tc := range tests {
		_, err := MeasureJump(tc.before, tc.after, tc.freq)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestContinuityString(t *testing.T) {
	m := ContinuityMeasurement{Before: 63, After: 64, ErrorNs: 280.4}
	const want = "guest TSC continuity: median error 0.28 µs over 127 samples (TSC offset honoured: no)"
	if got := m.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	m.TSCOffsetHonoured = true
	if got := m.String(); !strings.HasSuffix(got, "(TSC offset honoured: yes)") {
		t.Errorf("honoured: %q", got)
	}
}

func TestNsToTicks(t *testing.T) {
	tests := []struct {
		ns   int64
		freq uint64
		want int64
	}{
		{0, 2_445_402_000, 0},
		{1_000_000_000, 2_445_402_000, 2_445_402_000},
		{-1_000_000_000, 2_445_402_000, -2_445_402_000},
		{1, 2_445_402_000, 2},
		{3600 * 1_000_000_000, 2_445_402_000, 3600 * 2_445_402_000},
		{999_999_999, 4_000_000_000, 3_999_999_996},
	}
	for _, tc := range tests {
		got, err := nsToTicks(tc.ns, tc.freq)
		if err != nil || got != tc.want {
			t.Errorf("nsToTicks(%d, %d) = %d, %v; want %d", tc.ns, tc.freq, got, err, tc.want)
		}
	}
	if _, err := nsToTicks(math.MaxInt64, 1e10); err == nil {
		t.Errorf("an overflowing interval converted")
	}
}
