package timedata

import (
	"errors"
	"math"
	"math/big"
	"testing"
)

const day = 86400 * NsPerSec

// base is propolis's test input: freq 1 Hz, everything else zero.
func base() Data { return Data{GuestFreq: 1} }

func wc(ns uint64) Wallclock { return Wallclock{Sec: ns / NsPerSec, Nsec: uint32(ns % NsPerSec)} }

func TestSeedWorkedExample(t *testing.T) {
	src := Data{
		GuestFreq:  2649958945,
		GuestTSC:   2330632597459,
		Hrtime:     18028032305249,
		Wallclock:  Wallclock{Sec: 1683850713, Nsec: 581965192},
		BootHrtime: 17148534696948,
	}
	got, adj, err := Adjust(src, 18018796793122, Wallclock{Sec: 1683850713, Nsec: 582072774})
	if err != nil {
		t.Fatal(err)
	}
	want := Adjustments{
		GuestUptime:     879497608301,
		MigrateDelta:    107582,
		GuestTSCDelta:   285087,
		BootHrtimeTotal: 879497715883,
		BootHrtimeDelta: -9235619709,
	}
	if adj != want {
		t.Errorf("adjustments = %+v, want %+v", adj, want)
	}
	if got.GuestTSC != 2330632882546 {
		t.Errorf("guest TSC = %d, want 2330632882546", got.GuestTSC)
	}
	if got.BootHrtime != 17139299077239 {
		t.Errorf("boot_hrtime = %d, want 17139299077239", got.BootHrtime)
	}
	if got.GuestFreq != src.GuestFreq || got.Hrtime != 18018796793122 || got.Wallclock.String() != "1683850713.582072774" {
		t.Errorf("adjusted data carries wrong clocks: %+v", got)
	}
}

func TestInvalidHrtime(t *testing.T) {
	for _, tc := range []struct {
		name   string
		srcHrt int64
		dstHrt int64
	}{
		{"destination", 0, -1},
		{"source", -1, 0},
		{"both", math.MinInt64, math.MinInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := base()
			src.Hrtime = tc.srcHrt
			_, _, err := Adjust(src, tc.dstHrt, Wallclock{})
			if !errors.Is(err, ErrInvalidHrtime) {
				t.Fatalf("err = %v, want invalid_hrtime", err)
			}
		})
	}
}

func TestZeroFrequencyIsAnError(t *testing.T) {
	src := base()
	src.GuestFreq = 0
	_, _, err := Adjust(src, 0, Wallclock{Sec: 1})
	if !errors.Is(err, ErrInvalidGuestFreq) {
		t.Fatalf("err = %v, want invalid_guest_freq", err)
	}
	var ae *AdjustError
	if !errors.As(err, &ae) || ae.Kind != KindInvalidGuestFreq {
		t.Fatalf("errors.As: %v", err)
	}
}

func TestMigrateDelta(t *testing.T) {
	tests := []struct {
		name     string
		src, dst Wallclock
		delta    int64
		negative bool
		wantErr  error
	}{
		{"one second", wc(0), wc(NsPerSec), NsPerSec, false, nil},
		{"one ns", wc(0), wc(1), 1, false, nil},
		{"zero", wc(0), wc(0), 0, false, nil},
		{"negative second", wc(NsPerSec), wc(0), 0, true, nil},
		{"negative ns", wc(1), wc(0), 0, true, nil},
		{"too large", wc(0), wc(math.MaxInt64 + 1), 0, false, ErrInvalidMigrateDelta},
		{"max", wc(0), wc(math.MaxInt64), math.MaxInt64, false, nil},
		{"hugely negative", Wallclock{Sec: math.MaxUint64}, wc(0), 0, true, nil},
		{"bad nanoseconds", Wallclock{Nsec: NsPerSec}, wc(0), 0, false, ErrInvalidMigrateDelta},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := base()
			src.Wallclock = tc.src
			_, adj, err := Adjust(src, 0, tc.dst)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			// A huge delta overflows later stages with dst hrtime 0; only
			// the delta itself is under test here.
			if err != nil && !errors.Is(err, ErrBootHrtimeOverflow) {
				t.Fatal(err)
			}
			if adj.MigrateDelta != tc.delta || adj.MigrateDeltaNegative != tc.negative {
				t.Errorf("delta = %d (negative %v), want %d (negative %v)",
					adj.MigrateDelta, adj.MigrateDeltaNegative, tc.delta, tc.negative)
			}
		})
	}
}

func TestGuestUptime(t *testing.T) {
	tests := []struct {
		hrt, bhrt int64
		want      int64
		wantErr   bool
	}{
		{1, 0, 1, false},
		{300 * NsPerSec, 200 * NsPerSec, 100 * NsPerSec, false},
		{math.MaxInt64, math.MaxInt64 - 1, 1, false},
		{0, 0, 0, false},
		{300 * NsPerSec, 300 * NsPerSec, 0, false},
		{math.MaxInt64, math.MaxInt64, 0, false},
		{1000, -100, 1100, false},
		{0, math.MaxInt64, 0, true},  // underflow
		{math.MaxInt64, -1, 0, true}, // overflow
		{0, 1, 0, true},              // boot in the future
	}
	for _, tc := range tests {
		src := base()
		src.Hrtime, src.BootHrtime = tc.hrt, tc.bhrt
		_, adj, err := Adjust(src, math.MaxInt64, Wallclock{})
		if tc.wantErr {
			if !errors.Is(err, ErrGuestUptimeOverflow) {
				t.Errorf("(%d, %d): err = %v, want guest_uptime_overflow", tc.hrt, tc.bhrt, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("(%d, %d): %v", tc.hrt, tc.bhrt, err)
			continue
		}
		if adj.GuestUptime != tc.want {
			t.Errorf("(%d, %d): uptime %d, want %d", tc.hrt, tc.bhrt, adj.GuestUptime, tc.want)
		}
	}
}

func TestBootHrtimeTotal(t *testing.T) {
	tests := []struct {
		name    string
		hrt     int64
		delta   uint64
		want    int64
		wantErr error
	}{
		{"30s + 10s", 30 * NsPerSec, 10 * NsPerSec, 40 * NsPerSec, nil},
		{"max + 0", math.MaxInt64, 0, math.MaxInt64, nil},
		{"max + 1ns", math.MaxInt64, 1, 0, ErrTimeDeltaOverflow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := base()
			src.Hrtime = tc.hrt
			_, adj, err := Adjust(src, math.MaxInt64, wc(tc.delta))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if adj.BootHrtimeTotal != tc.want {
				t.Errorf("total = %d, want %d", adj.BootHrtimeTotal, tc.want)
			}
		})
	}
}

func TestNewBootHrtime(t *testing.T) {
	tests := []struct {
		name     string
		dstHrt   int64
		src      Data
		dstWC    Wallclock
		wantBoot int64
	}{
		{
			name:     "positive",
			dstHrt:   4*day + 60*NsPerSec + 500,
			src:      Data{GuestFreq: 1, Hrtime: 5 * day, BootHrtime: 2 * day},
			dstWC:    wc(300),
			wantBoot: 1*day + 60*NsPerSec + 200,
		},
		{
			name:     "negative",
			dstHrt:   3*day + 300,
			src:      Data{GuestFreq: 1, Hrtime: 10 * day, BootHrtime: 6 * day, Wallclock: wc(5 * NsPerSec)},
			dstWC:    wc(65*NsPerSec + 500),
			wantBoot: -(1*day + 60*NsPerSec + 200),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := Adjust(tc.src, tc.dstHrt, tc.dstWC)
			if err != nil {
				t.Fatal(err)
			}
			if got.BootHrtime != tc.wantBoot {
				t.Errorf("boot_hrtime = %d, want %d", got.BootHrtime, tc.wantBoot)
			}
		})
	}
}

func TestTSCDelta(t *testing.T) {
	tests := []struct {
		name    string
		sec     uint64
		nsec    uint32
		freq    uint64
		want    uint64
		wantErr error
	}{
		{"1GHz 1s", 1, 0, 1_000_000_000, 1_000_000_000, nil},
		{"1GHz 20s", 20, 0, 1_000_000_000, 20_000_000_000, nil},
		{"2.5GHz 1s", 1, 0, 2_500_000_000, 2_500_000_000, nil},
		{"2.5GHz 20s", 20, 0, 2_500_000_000, 50_000_000_000, nil},
		{"floor", 0, 107582, 2649958945, 285087, nil},
		{"multiply overflows 128 bits", math.MaxUint64, 0, math.MaxUint64, 0, ErrTSCAdjustOverflow},
		{"result exceeds 64 bits", math.MaxUint64, 0, 1_000_000_000, 0, ErrTSCAdjustOverflow},
		{"zero frequency", 1, 0, 0, 0, ErrInvalidGuestFreq},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TSCDelta(tc.sec, tc.nsec, tc.freq)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("TSCDelta = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestGuestTSC(t *testing.T) {
	delta := wc(3*NsPerSec + 3)
	tests := []struct {
		name string
		freq uint64
		tsc  uint64
		want uint64
	}{
		{"1GHz from 0", 1_000_000_000, 0, 3_000_000_003},
		{"2GHz from 0", 2_000_000_000, 0, 6_000_000_006},
		{"1GHz wraps", 1_000_000_000, math.MaxUint64, 3_000_000_002},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := Data{GuestFreq: tc.freq, GuestTSC: tc.tsc}
			got, _, err := Adjust(src, 4*NsPerSec, delta)
			if err != nil {
				t.Fatal(err)
			}
			if got.GuestTSC != tc.want {
				t.Errorf("guest TSC = %d, want %d", got.GuestTSC, tc.want)
			}
		})
	}
}

func TestErrorKindsAreDistinct(t *testing.T) {
	sentinels := []*AdjustError{ErrInvalidHrtime, ErrInvalidGuestFreq, ErrInvalidMigrateDelta,
		ErrGuestUptimeOverflow, ErrTimeDeltaOverflow, ErrBootHrtimeOverflow, ErrTSCAdjustOverflow}
	for i, a := range sentinels {
		for j, b := range sentinels {
			if got := errors.Is(&AdjustError{Kind: a.Kind, Op: "x"}, b); got != (i == j) {
				t.Errorf("errors.Is(%s, %s) = %v", a.Kind, b.Kind, got)
			}
		}
		if a.Error() == "" {
			t.Errorf("%s: empty message", a.Kind)
		}
	}
}

func TestParseWallclock(t *testing.T) {
	tests := []struct {
		in      string
		want    Wallclock
		wantErr bool
	}{
		{"1683850713.581965192", Wallclock{1683850713, 581965192}, false},
		{"5.5", Wallclock{5, 500000000}, false},
		{"12", Wallclock{12, 0}, false},
		{"0.000000001", Wallclock{0, 1}, false},
		{"18446744073709551615.999999999", Wallclock{math.MaxUint64, 999999999}, false},
		{"", Wallclock{}, true},
		{".5", Wallclock{}, true},
		{"5.", Wallclock{}, true},
		{"-1.0", Wallclock{}, true},
		{"1.0000000001", Wallclock{}, true},
		{"1e9", Wallclock{}, true},
		{"18446744073709551616", Wallclock{}, true},
		{"1.2.3", Wallclock{}, true},
	}
	for _, tc := range tests {
		got, err := ParseWallclock(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseWallclock(%q) err = %v, wantErr %v", tc.in, err, tc.wantErr)
			continue
		}
		if got != tc.want {
			t.Errorf("ParseWallclock(%q) = %v, want %v", tc.in, got, tc.want)
		}
		if err == nil && tc.in != "" {
			back, err := ParseWallclock(got.String())
			if err != nil || back != got {
				t.Errorf("round trip of %v: %v, %v", got, back, err)
			}
		}
	}
}

func TestWallclockAddNs(t *testing.T) {
	tests := []struct {
		w    Wallclock
		ns   int64
		want Wallclock
		ok   bool
	}{
		{Wallclock{5, 500}, 1, Wallclock{5, 501}, true},
		{Wallclock{5, 999999999}, 1, Wallclock{6, 0}, true},
		{Wallclock{5, 0}, -1, Wallclock{4, 999999999}, true},
		{Wallclock{5, 0}, -5 * NsPerSec, Wallclock{0, 0}, true},
		{Wallclock{5, 0}, -5*NsPerSec - 1, Wallclock{}, false},
		{Wallclock{math.MaxUint64, 999999999}, 1, Wallclock{}, false},
	}
	for _, tc := range tests {
		got, ok := tc.w.AddNs(tc.ns)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%v.AddNs(%d) = %v, %v; want %v, %v", tc.w, tc.ns, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzAdjust checks Adjust's invariants on arbitrary input: it never
// panics, and on success the TSC and boot_hrtime obey the documented math.
func FuzzAdjust(f *testing.F) {
	f.Add(uint64(2649958945), uint64(2330632597459), int64(18028032305249), uint64(1683850713), uint32(581965192),
		int64(17148534696948), int64(18018796793122), uint64(1683850713), uint32(582072774))
	f.Add(uint64(1), uint64(0), int64(0), uint64(0), uint32(0), int64(0), int64(0), uint64(0), uint32(0))
	f.Add(uint64(0), uint64(math.MaxUint64), int64(math.MaxInt64), uint64(1), uint32(0), int64(-1), int64(-1), uint64(0), uint32(0))
	f.Add(uint64(math.MaxUint64), uint64(math.MaxUint64), int64(1), uint64(0), uint32(0), int64(math.MinInt64), int64(1), uint64(math.MaxUint64), uint32(999999999))
	f.Fuzz(func(t *testing.T, freq, tsc uint64, hrt int64, srcSec uint64, srcNsec uint32, bhrt, dstHrt int64, dstSec uint64, dstNsec uint32) {
		src := Data{GuestFreq: freq, GuestTSC: tsc, Hrtime: hrt, Wallclock: Wallclock{srcSec, srcNsec}, BootHrtime: bhrt}
		dstWC := Wallclock{dstSec, dstNsec}
		got, adj, err := Adjust(src, dstHrt, dstWC)
		if err != nil {
			var ae *AdjustError
			if !errors.As(err, &ae) || ae.Kind == "" || err.Error() == "" {
				t.Fatalf("error %v is not a classified *AdjustError", err)
			}
			return
		}
		delta := new(big.Int).SetInt64(adj.MigrateDelta)
		// TSC: new = old + ⌊Δ·f/1e9⌋ mod 2^64.
		want := new(big.Int).Mul(delta, new(big.Int).SetUint64(freq))
		want.Quo(want, big.NewInt(NsPerSec))
		want.Add(want, new(big.Int).SetUint64(tsc))
		want.Mod(want, new(big.Int).Lsh(big.NewInt(1), 64))
		if got.GuestTSC != want.Uint64() {
			t.Fatalf("guest TSC %d, want %s", got.GuestTSC, want)
		}
		// new boot_hrtime + uptime + Δ = destination hrtime.
		sum := new(big.Int).SetInt64(got.BootHrtime)
		sum.Add(sum, big.NewInt(adj.GuestUptime))
		sum.Add(sum, delta)
		if sum.Cmp(big.NewInt(dstHrt)) != 0 {
			t.Fatalf("boot_hrtime %d + uptime %d + delta %d != dst hrtime %d", got.BootHrtime, adj.GuestUptime, adj.MigrateDelta, dstHrt)
		}
		if adj.GuestUptime != hrt-bhrt || adj.GuestUptime < 0 {
			t.Fatalf("uptime %d, want %d", adj.GuestUptime, hrt-bhrt)
		}
		if got.BootHrtime-bhrt != adj.BootHrtimeDelta {
			t.Fatalf("boot_hrtime delta %d, want %d", adj.BootHrtimeDelta, got.BootHrtime-bhrt)
		}
		mag, negative, _ := dstWC.Sub(src.Wallclock)
		if negative != adj.MigrateDeltaNegative || (!negative && int64(mag) != adj.MigrateDelta) || (negative && adj.MigrateDelta != 0) {
			t.Fatalf("delta %d negative %v; wall clocks give %d negative %v", adj.MigrateDelta, adj.MigrateDeltaNegative, mag, negative)
		}
		if got.GuestFreq != freq || got.Hrtime != dstHrt || got.Wallclock != dstWC {
			t.Fatalf("clocks not carried: %+v", got)
		}
	})
}

func BenchmarkAdjust(b *testing.B) {
	src := Data{
		GuestFreq: 2649958945, GuestTSC: 2330632597459, Hrtime: 18028032305249,
		Wallclock: Wallclock{Sec: 1683850713, Nsec: 581965192}, BootHrtime: 17148534696948,
	}
	dstWC := Wallclock{Sec: 1683850713, Nsec: 582072774}
	b.ReportAllocs()
	var sink Data
	for b.Loop() {
		got, _, err := Adjust(src, 18018796793122, dstWC)
		if err != nil {
			b.Fatal(err)
		}
		sink = got
	}
	_ = sink
}
