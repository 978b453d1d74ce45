package uprobe

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The program writes each hit into its CPU's ring of slots, in a BPF array
// memory-mapped into this process, and bumps that CPU's head; the reader
// polls the heads and copies what is new. Nothing crosses a system call
// on either side.
const (
	// slotSize is one slot: a record, then at seqOff its sequence number
	// plus one, which the program clears before it writes the record and
	// sets after, so a reader that finds the number it expects before and
	// after copying the record has copied it whole. (Slots padded to two
	// cache lines measured no faster.)
	slotSize = RecordSize + 8
	seqOff   = RecordSize
	// headSize gives each CPU's head a cache line of its own.
	headSize = 64
	// minSlots and maxSlots bound a CPU's ring.
	minSlots = 1 << 13
	maxSlots = 1 << 20
)

// slotRing is the reader's side of the per-CPU rings.
type slotRing struct {
	cpus  int
	slots uint64 // per CPU, a power of two

	heads, ring *ebpf.Map
	// mu keeps Close from unmapping while a drain reads.
	mu           sync.RWMutex
	headMem, mem []byte
	tails        []uint64 // per CPU, the next sequence number to read
	lost         atomic.Uint64
}

// slotsPerCPU shares bytes out among cpus rings, in a power of two of
// slots each.
func slotsPerCPU(bytes, cpus int) uint64 {
	n := uint64(bytes) / uint64(cpus*slotSize)
	n = min(max(n, minSlots), maxSlots)
	return 1 << (bits.Len64(n) - 1)
}

func newSlotRing(ringBytes int) (_ *slotRing, err error) {
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("counting CPUs: %w", err)
	}
	s := &slotRing{cpus: cpus, slots: slotsPerCPU(ringBytes, cpus), tails: make([]uint64, cpus)}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	s.heads, err = ebpf.NewMap(&ebpf.MapSpec{Name: "migtrace_heads", Type: ebpf.Array, KeySize: 4,
		ValueSize: headSize, MaxEntries: uint32(cpus), Flags: unix.BPF_F_MMAPABLE})
	if err != nil {
		return nil, classify("creating the BPF ring heads", err)
	}
	s.ring, err = ebpf.NewMap(&ebpf.MapSpec{Name: "migtrace_slots", Type: ebpf.Array, KeySize: 4,
		ValueSize: slotSize, MaxEntries: uint32(uint64(cpus) * s.slots), Flags: unix.BPF_F_MMAPABLE})
	if err != nil {
		return nil, classify("creating the BPF record slots", err)
	}
	if s.headMem, err = mapMemory(s.heads, cpus*headSize); err != nil {
		return nil, err
	}
	if s.mem, err = mapMemory(s.ring, int(uint64(cpus)*s.slots*slotSize)); err != nil {
		return nil, err
	}
	return s, nil
}

// mapMemory maps a BPF array's values, read-only.
func mapMemory(m *ebpf.Map, size int) ([]byte, error) {
	size = (size + unix.Getpagesize() - 1) &^ (unix.Getpagesize() - 1)
	b, err := unix.Mmap(m.FD(), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, classify("mapping a BPF array", err)
	}
	return b, nil
}

func load64(b []byte, off uint64) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&b[off])))
}

// drain appends every complete record written since the last drain. A
// record the program wrote over before it was read (its CPU's ring went
// round while the reader was away), or while it was being copied, is
// counted lost rather than returned torn.
func (s *slotRing) drain(out []Record) ([]Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.mem == nil {
		return out, ErrClosed
	}
	for c := range s.cpus {
		head, tail := load64(s.headMem, uint64(c*headSize)), s.tails[c]
		if head-tail > s.slots {
			s.lost.Add(head - tail - s.slots)
			tail = head - s.slots
		}
		for ; tail < head; tail++ {
			// tail&(slots-1) is the slot; its number is tail+1 once the
			// record is whole, less while this lap's writer is at it.
			off := (uint64(c)*s.slots + tail&(s.slots-1)) * slotSize
			seq := load64(s.mem, off+seqOff)
			if seq < tail+1 {
				break // still being written: the next drain takes it
			}
			if seq > tail+1 {
				s.lost.Add(1) // a later lap wrote over it
				continue
			}
			var r Record
			if err := r.UnmarshalBinary(s.mem[off : off+RecordSize]); err != nil {
				return out, err
			}
			if load64(s.mem, off+seqOff) != seq {
				s.lost.Add(1) // written over while being copied
				continue
			}
			out = append(out, r)
		}
		s.tails[c] = tail
	}
	return out, nil
}

func (s *slotRing) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, b := range [][]byte{s.headMem, s.mem} {
		if b != nil {
			errs = append(errs, unix.Munmap(b))
		}
	}
	s.headMem, s.mem = nil, nil
	for _, m := range []*ebpf.Map{s.heads, s.ring} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	s.heads, s.ring = nil, nil
	return joinErrs(errs)
}
