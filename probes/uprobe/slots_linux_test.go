package uprobe

import (
	"encoding/binary"
	"slices"
	"testing"
)

// memRing is a slotRing over plain memory, as the program would leave it.
func memRing(cpus int, slots uint64) *slotRing {
	return &slotRing{cpus: cpus, slots: slots, tails: make([]uint64, cpus),
		headMem: make([]byte, cpus*headSize), mem: make([]byte, uint64(cpus)*slots*slotSize)}
}

// write does what the program does for hit seq on cpu; complete false
// leaves the slot as a writer still at it leaves it.
func (s *slotRing) write(cpu int, seq uint64, complete bool) {
	binary.LittleEndian.PutUint64(s.headMem[cpu*headSize:], max(binary.LittleEndian.Uint64(s.headMem[cpu*headSize:]), seq+1))
	off := (uint64(cpu)*s.slots + seq&(s.slots-1)) * slotSize
	r := Record{Timestamp: 1000*seq + uint64(cpu), PID: 7, TID: uint32(cpu), Cookie: 3, Args: [NumArgs]uint64{seq}}
	b, _ := r.MarshalBinary()
	copy(s.mem[off:], b)
	n := seq + 1
	if !complete {
		n = 0
	}
	binary.LittleEndian.PutUint64(s.mem[off+seqOff:], n)
}

func TestDrain(t *testing.T) {
	tests := []struct {
		name     string
		write    func(s *slotRing)
		wantSeqs []uint64 // Args[0] of the records returned, in order
		wantLost uint64
		thenSeqs []uint64 // returned by a second drain after complete() below
	}{
		{"nothing", func(s *slotRing) {}, nil, 0, nil},
		{"two CPUs", func(s *slotRing) {
			s.write(0, 0, true)
			s.write(0, 1, true)
			s.write(1, 0, true)
		}, []uint64{0, 1, 0}, 0, nil},
		{"a slot still being written stops its CPU until it is whole", func(s *slotRing) {
			s.write(0, 0, true)
			s.write(0, 1, false)
			s.write(0, 2, true)
			s.write(1, 0, true)
		}, []uint64{0, 0}, 0, []uint64{1, 2}},
		{"a ring that came round loses what it wrote over", func(s *slotRing) {
			for seq := range uint64(11) { // 3 past a ring of 8
				s.write(0, seq, true)
			}
		}, []uint64{3, 4, 5, 6, 7, 8, 9, 10}, 3, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := memRing(2, 8)
			tc.write(s)
			recs, err := s.drain(nil)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []uint64
			for _, r := range recs {
				seqs = append(seqs, r.Args[0])
				if r.PID != 7 || r.Cookie != 3 || r.Timestamp != 1000*r.Args[0]+uint64(r.TID) {
					t.Errorf("record %+v is not as written", r)
				}
			}
			if !slices.Equal(seqs, tc.wantSeqs) || s.lost.Load() != tc.wantLost {
				t.Fatalf("drained %v, lost %d; want %v, lost %d", seqs, s.lost.Load(), tc.wantSeqs, tc.wantLost)
			}
			if tc.thenSeqs != nil {
				s.write(0, 1, true)
				recs, _ := s.drain(nil)
				seqs = seqs[:0]
				for _, r := range recs {
					seqs = append(seqs, r.Args[0])
				}
				if !slices.Equal(seqs, tc.thenSeqs) {
					t.Fatalf("once whole: drained %v, want %v", seqs, tc.thenSeqs)
				}
			}
			if again, _ := s.drain(nil); len(again) != 0 {
				t.Errorf("a second drain returned %d records again", len(again))
			}
		})
	}
	closed := memRing(1, 8)
	closed.mem = nil
	if _, err := closed.drain(nil); err != ErrClosed {
		t.Errorf("drain after close: %v, want ErrClosed", err)
	}
}

func TestSlotsPerCPU(t *testing.T) {
	for _, tc := range []struct {
		bytes, cpus int
		want        uint64
	}{
		{32 << 20, 2, 1 << 17},
		{32 << 20, 3, 1 << 16},
		{1 << 10, 2, minSlots},
		{1 << 40, 1, maxSlots},
	} {
		if got := slotsPerCPU(tc.bytes, tc.cpus); got != tc.want {
			t.Errorf("slotsPerCPU(%d, %d) = %d, want %d", tc.bytes, tc.cpus, got, tc.want)
		}
	}
}
