package sim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// newTestVM creates a VM of a backend made with opts, destroyed when the
// test ends.
func newTestVM(t *testing.T, opts ...Option) *VM {
	t.Helper()
	b, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := b.NewVM(b.DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vm.Destroy() })
	return vm
}

func TestScaleToTicks(t *testing.T) {
	tests := []struct {
		name string
		ns   int64
		freq uint64
		want uint64
	}{
		{"1 s at 1 GHz", 1e9, 1e9, 1e9},
		{"20 s at 2.5 GHz", 20e9, 2_500_000_000, 50e9},
		{"1 ns at 2.5 GHz floors", 1, 2_500_000_000, 2},
		{"seed example delta", 107582, 2649958945, 285087},
		{"zero", 0, 3e9, 0},
		{"negative is symmetric", -1e9, 1e9, math.MaxUint64 - 1e9 + 1},
		{"min int64", math.MinInt64, 1e9, 1 << 63},
		// 2^63 ns at 4 GHz is 3.7e19 ticks: past 2^64, so it wraps.
		{"wraps past 2^64", math.MaxInt64, 4e9, 36893488147419103228 - 1<<64},
	}
	for _, tc := range tests {
		if got := scaleToTicks(tc.ns, tc.freq); got != tc.want {
			t.Errorf("%s: scaleToTicks(%d, %d) = %d, want %d", tc.name, tc.ns, tc.freq, got, tc.want)
		}
	}
}

func TestPagesDue(t *testing.T) {
	tests := []struct {
		rate    uint64
		elapsed time.Duration
		want    uint64
	}{
		{16 << 20, time.Second, 4096},
		{16 << 20, time.Millisecond, 4},
		{4096, 999 * time.Millisecond, 0},
		{0, time.Hour, 0},
		{1 << 40, -time.Second, 0},
		{math.MaxUint64, math.MaxInt64, math.MaxUint64},
	}
	for _, tc := range tests {
		if got := pagesDue(tc.rate, tc.elapsed); got != tc.want {
			t.Errorf("pagesDue(%d, %v) = %d, want %d", tc.rate, tc.elapsed, got, tc.want)
		}
	}
}

// ringImage builds a TSC ring holding samples appended in order.
func ringImage(capacity uint64, samples []uint64) []byte {
	b := make([]byte, RingPages*vmm.PageSize)
	binary.LittleEndian.PutUint64(b[ringHdrMagic:], ringMagic)
	binary.LittleEndian.PutUint64(b[ringHdrCapacity:], capacity)
	for i, s := range samples {
		binary.LittleEndian.PutUint64(b[ringHdrSize+(uint64(i)%capacity)*8:], s)
	}
	binary.LittleEndian.PutUint64(b[ringHdrCount:], uint64(len(samples)))
	return b
}

func seq(from, n uint64) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = from + uint64(i)*10
	}
	return s
}

func TestParseRing(t *testing.T) {
	wrapped := seq(1000, RingCapacity+37)
	backwardsAfterWrap := seq(1000, RingCapacity+37)
	backwardsAfterWrap[RingCapacity+20] = 5
	tests := []struct {
		name    string
		ring    []byte
		want    vmm.Continuity
		wantErr error
	}{
		{"empty", ringImage(RingCapacity, nil), vmm.Continuity{Monotonic: true}, nil},
		{"one", ringImage(RingCapacity, []uint64{7}), vmm.Continuity{Samples: 1, Monotonic: true, Last: 7}, nil},
		{"equal samples are monotonic", ringImage(RingCapacity, []uint64{7, 7, 7}), vmm.Continuity{Samples: 3, Monotonic: true, Last: 7}, nil},
		{"backwards", ringImage(RingCapacity, []uint64{1, 5, 4, 9}), vmm.Continuity{Samples: 4, FirstBad: 2, Last: 9}, nil},
		{"full, no wrap", ringImage(RingCapacity, seq(0, RingCapacity)),
			vmm.Continuity{Samples: RingCapacity, Monotonic: true, Last: (RingCapacity - 1) * 10}, nil},
		// After a wrap the oldest sample sits at count%capacity; reading
		// from slot 0 would see the newest samples before the oldest.
		{"wrapped", ringImage(RingCapacity, wrapped),
			vmm.Continuity{Samples: RingCapacity, Monotonic: true, Last: wrapped[len(wrapped)-1]}, nil},
		{"backwards after wrap", ringImage(RingCapacity, backwardsAfterWrap),
			vmm.Continuity{Samples: RingCapacity, FirstBad: RingCapacity - 17, Last: wrapped[len(wrapped)-1]}, nil},
		{"small capacity wrap", ringImage(3, []uint64{1, 2, 3, 4, 5}), vmm.Continuity{Samples: 3, Monotonic: true, Last: 5}, nil},
		{"no magic", make([]byte, RingPages*vmm.PageSize), vmm.Continuity{}, ErrNoRing},
		{"zero capacity", ringImage(0, nil), vmm.Continuity{}, errAny},
		{"capacity too big", ringImage(RingCapacity+1, nil), vmm.Continuity{}, errAny},
		{"short buffer", make([]byte, 100), vmm.Continuity{}, errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRing(tc.ring)
			switch {
			case tc.wantErr == errAny && err != nil:
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			case tc.wantErr == nil && err != nil:
				t.Fatalf("error %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

var errAny = errors.New("any error")

func FuzzParseRing(f *testing.F) {
	f.Add(ringImage(RingCapacity, seq(1, 100)))
	f.Add(ringImage(3, []uint64{3, 2, 1, 0}))
	f.Add(ringImage(RingCapacity, seq(0, RingCapacity+1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Fuzzers mutate short inputs best; pad to a full ring.
		ring := make([]byte, RingPages*vmm.PageSize)
		copy(ring, b)
		c, err := ParseRing(ring)
		if err != nil {
			return
		}
		if c.Samples < 0 || c.Samples > RingCapacity {
			t.Fatalf("samples %d outside 0..%d", c.Samples, RingCapacity)
		}
		if !c.Monotonic && (c.FirstBad < 1 || c.FirstBad >= c.Samples) {
			t.Fatalf("first bad sample %d of %d", c.FirstBad, c.Samples)
		}
	})
}

func FuzzDecodeVCPU(f *testing.F) {
	f.Add(encodeVCPU(workload{id: 3, rate: 1 << 20, seq: 99, rng: 12345, pages: 99, samples: 1000}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeVCPU(b)
		if err != nil {
			return
		}
		if got := encodeVCPU(w); !bytes.Equal(got, b) {
			t.Fatalf("decode/encode changed %x into %x", b, got)
		}
	})
}

func FuzzDecodeTimer(f *testing.F) {
	f.Add(encodeTimer(timerDevice{armed: true, deadline: 5e9, period: 1e8, fired: 7}, 1e9))
	f.Add(encodeTimer(timerDevice{}, 0))
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := decodeTimer(b)
		if err != nil {
			return
		}
		if ts.armed && ts.period <= 0 {
			t.Fatalf("accepted an armed timer with period %d", ts.period)
		}
		got := encodeTimer(timerDevice{armed: ts.armed, deadline: ts.sinceBoot, period: ts.period, fired: ts.fired}, 0)
		if !bytes.Equal(got, b) {
			t.Fatalf("decode/encode changed %x into %x", b, got)
		}
	})
}

func FuzzDecodeSerial(f *testing.F) {
	var s serialDevice
	s.write([]byte("uptime 1.000s tick 1\n"))
	f.Add(encodeSerial(s))
	f.Add(encodeSerial(serialDevice{}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := decodeSerial(b)
		if err != nil {
			return
		}
		if len(d.history) > SerialHistoryBytes || uint64(len(d.history)) > d.total {
			t.Fatalf("accepted history of %d bytes, total %d", len(d.history), d.total)
		}
		if got := encodeSerial(d); !bytes.Equal(got, b) {
			t.Fatalf("decode/encode changed %x into %x", b, got)
		}
	})
}

func TestSerialHistoryKeepsTail(t *testing.T) {
	var s serialDevice
	line := bytes.Repeat([]byte("x"), 1000)
	for range 100 {
		s.write(line)
	}
	s.write([]byte("end\n"))
	if len(s.history) != SerialHistoryBytes {
		t.Errorf("history %d bytes, want %d", len(s.history), SerialHistoryBytes)
	}
	if s.total != 100*1000+4 {
		t.Errorf("total %d", s.total)
	}
	if !bytes.HasSuffix(s.history, []byte("xend\n")) {
		t.Errorf("history does not end with the newest output")
	}
}

// BenchmarkGuestPageWrite is the cost of one workload page write (stamp,
// body, checksum, dirty bit): it bounds the dirty rate one vCPU sustains.
func BenchmarkGuestPageWrite(b *testing.B) {
	backend, err := New(WithMemory(64<<20), WithDirtyRate(0))
	if err != nil {
		b.Fatal(err)
	}
	vm, err := backend.NewVM(vmm.Spec{})
	if err != nil {
		b.Fatal(err)
	}
	defer vm.Destroy()
	c := vm.vcpus[0]
	b.ResetTimer()
	b.ReportAllocs()
	b.SetBytes(vmm.PageSize)
	for range b.N {
		vm.writeWorkloadPage(c)
	}
}
