package sim

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// RingPages is the number of pages at the start of guest RAM that hold the
// guest's TSC ring; the workload never writes them.
const RingPages = 16

// The ring's layout in guest memory: a header in the first 64 bytes of page
// 0, then 8-byte little-endian samples in slots filling the rest.
const (
	ringMagic       = 0x4d54_5453_4352_4e47 // "MTTSCRNG"
	ringHdrMagic    = 0
	ringHdrCapacity = 8
	ringHdrCount    = 16 // samples ever appended; slot = count % capacity
	ringHdrSize     = 64
	// RingCapacity is the number of samples the ring holds.
	RingCapacity = (RingPages*vmm.PageSize - ringHdrSize) / 8
)

// ErrNoRing means guest memory holds no TSC ring: the guest never booted,
// or its memory was not copied.
var ErrNoRing = errors.New("no TSC ring in guest memory")

// initRing writes an empty ring header, as a guest's boot code would.
func initRing(m *guestMemory) {
	h := m.beginGuestWrite(0)
	binary.LittleEndian.PutUint64(h[ringHdrMagic:], ringMagic)
	binary.LittleEndian.PutUint64(h[ringHdrCapacity:], RingCapacity)
	binary.LittleEndian.PutUint64(h[ringHdrCount:], 0)
	m.endGuestWrite(0)
}

// appendSample appends tsc to the ring; the caller holds vm.ringMu. The
// header page and the slot's page are locked in page order, which is also
// stripe order, so this cannot deadlock with single-page lockers.
func appendSample(m *guestMemory, tsc uint64) {
	h := m.beginGuestWrite(0)
	if binary.LittleEndian.Uint64(h[ringHdrMagic:]) != ringMagic ||
		binary.LittleEndian.Uint64(h[ringHdrCapacity:]) != RingCapacity {
		// A guest resumed from memory that never held a ring starts one.
		binary.LittleEndian.PutUint64(h[ringHdrMagic:], ringMagic)
		binary.LittleEndian.PutUint64(h[ringHdrCapacity:], RingCapacity)
		binary.LittleEndian.PutUint64(h[ringHdrCount:], 0)
	}
	count := binary.LittleEndian.Uint64(h[ringHdrCount:])
	off := ringHdrSize + (count%RingCapacity)*8
	slotPage, slotOff := off/vmm.PageSize, off%vmm.PageSize
	if slotPage == 0 {
		binary.LittleEndian.PutUint64(h[slotOff:], tsc)
	} else {
		p := m.beginGuestWrite(slotPage)
		binary.LittleEndian.PutUint64(p[slotOff:], tsc)
		m.endGuestWrite(slotPage)
	}
	binary.LittleEndian.PutUint64(h[ringHdrCount:], count+1)
	m.endGuestWrite(0)
}

// GuestContinuity reads the guest's TSC ring from its memory and checks
// that its samples, oldest to newest, never decrease. It fails with
// ErrNoRing when memory holds no ring.
func (vm *VM) GuestContinuity() (vmm.Continuity, error) {
	vm.ringMu.Lock()
	defer vm.ringMu.Unlock()
	buf := make([]byte, RingPages*vmm.PageSize)
	if err := vm.ReadPages(0, buf); err != nil {
		return vmm.Continuity{}, fmt.Errorf("reading the TSC ring: %w", err)
	}
	return ParseRing(buf)
}

// ParseRing checks the TSC ring held in ring, a copy of the first RingPages
// pages of guest memory. Samples are checked oldest first, across the
// ring's wrap; FirstBad is the position, in that order, of the first sample
// below its predecessor.
func ParseRing(ring []byte) (vmm.Continuity, error) {
	if len(ring) < RingPages*vmm.PageSize {
		return vmm.Continuity{}, fmt.Errorf("TSC ring: %d bytes, want %d", len(ring), RingPages*vmm.PageSize)
	}
	if magic := binary.LittleEndian.Uint64(ring[ringHdrMagic:]); magic != ringMagic {
		return vmm.Continuity{}, fmt.Errorf("%w: magic %#x, want %#x", ErrNoRing, magic, uint64(ringMagic))
	}
	capacity := binary.LittleEndian.Uint64(ring[ringHdrCapacity:])
	if capacity == 0 || capacity > RingCapacity {
		return vmm.Continuity{}, fmt.Errorf("TSC ring: capacity %d outside 1..%d", capacity, RingCapacity)
	}
	count := binary.LittleEndian.Uint64(ring[ringHdrCount:])
	n, oldest := count, uint64(0)
	if count > capacity {
		n, oldest = capacity, count%capacity
	}
	c := vmm.Continuity{Samples: int(n), Monotonic: true}
	var prev uint64
	for i := range n {
		slot := (oldest + i) % capacity
		s := binary.LittleEndian.Uint64(ring[ringHdrSize+slot*8:])
		if i > 0 && s < prev && c.Monotonic {
			c.Monotonic, c.FirstBad = false, int(i)
		}
		prev = s
	}
	c.Last = prev
	return c, nil
}
