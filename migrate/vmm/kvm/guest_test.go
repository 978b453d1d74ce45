package kvm

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
)

func TestLayout(t *testing.T) {
	tests := []struct {
		memory  uint64
		pdPages uint64
		ok      bool
	}{
		{2 << 20, 1, true},
		{1 << 30, 1, true},
		{3 << 30, 3, true},
		{0, 0, false},
		{3 << 20, 0, false},
		{1<<20 + 4096, 0, false},
		{1024 << 30, 0, false},
	}
	for _, tc := range tests {
		l, err := newLayout(tc.memory)
		if (err == nil) != tc.ok {
			t.Errorf("newLayout(%d): error %v, want ok=%v", tc.memory, err, tc.ok)
			continue
		}
		if tc.ok && (l.pdPages != tc.pdPages || l.dirtyFirst != firstPDPage+tc.pdPages) {
			t.Errorf("newLayout(%d) = %+v", tc.memory, l)
		}
	}
}

func TestFirmware(t *testing.T) {
	l, err := newLayout(4 << 20)
	if err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, 4<<20)
	l.writeFirmware(mem)
	c, err := ParseRing(mem)
	if err != nil || c.Samples != 0 || !c.Monotonic {
		t.Fatalf("fresh ring: %+v, %v", c, err)
	}
	pd := firstPDPage * vmm.PageSize
	for i := range 2 {
		e := binary.LittleEndian.Uint64(mem[pd+i*8:])
		if want := uint64(i*hugePage) | pteTable | pteDirty | pteLarge; e != want {
			t.Errorf("PDE %d = %#x, want %#x", i, e, want)
		}
	}
	if e := binary.LittleEndian.Uint64(mem[pd+2*8:]); e != 0 {
		t.Errorf("PDE past memory = %#x", e)
	}
	if got := mem[codePage*vmm.PageSize+len(guestProgram)-2]; got != 0xeb {
		t.Errorf("program does not end in its jmp: %#x", got)
	}
}

func TestParseRing(t *testing.T) {
	ring := func(count uint64, samples func(k uint64) uint64) []byte {
		b := make([]byte, RingBytes)
		binary.LittleEndian.PutUint64(b[hdrMagic:], ringMagic)
		binary.LittleEndian.PutUint64(b[hdrCapacity:], RingCapacity)
		binary.LittleEndian.PutUint64(b[hdrCount:], count)
		for k := count - min(count, RingCapacity); k < count; k++ {
			binary.LittleEndian.PutUint64(b[ringPage*vmm.PageSize+k%RingCapacity*8:], samples(k))
		}
		return b
	}
	rising := func(k uint64) uint64 { return 1000 + 7*k }
	tests := []struct {
		name      string
		ring      []byte
		samples   int
		monotonic bool
		firstBad  int
		last      uint64
	}{
		{"empty", ring(0, rising), 0, true, 0, 0},
		{"partial", ring(10, rising), 10, true, 0, rising(9)},
		{"wrapped", ring(3*RingCapacity+5, rising), RingCapacity, true, 0, rising(3*RingCapacity + 4)},
		{"backwards", ring(100, func(k uint64) uint64 {
			if k == 40 {
				return 1
			}
			return rising(k)
		}), 100, false, 40, rising(99)},
	}
	for _, tc := range tests {
		c, err := ParseRing(tc.ring)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Samples != tc.samples || c.Monotonic != tc.monotonic || c.FirstBad != tc.firstBad || c.Last != tc.last {
			t.Errorf("%s: %+v", tc.name, c)
		}
	}
	if _, err := ParseRing(make([]byte, RingBytes)); !errors.Is(err, ErrNoRing) {
		t.Errorf("zero memory: %v", err)
	}
	if _, err := ParseRing(make([]byte, 100)); err == nil {
		t.Errorf("short copy parsed")
	}
	bad := ring(1, rising)
	binary.LittleEndian.PutUint64(bad[hdrCapacity:], 3)
	if _, err := ParseRing(bad); err == nil {
		t.Errorf("wrong capacity parsed")
	}
}
