package sim

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// stripeCount is the number of page locks; page p uses stripe p%stripeCount.
// A vCPU holds its page's stripe while it writes the page, and the host holds
// it while it copies the page out of a running guest, so a copy never sees a
// half-written page and the race detector sees every access ordered.
const stripeCount = 1024

// guestMemory is the guest's RAM and its dirty log.
type guestMemory struct {
	ram   []byte
	pages uint64
	// dirty has one bit per page: bit p%64 of dirty[p/64]. Guests set bits
	// with atomic OR; TakeDirty clears them with atomic swaps.
	dirty   []atomic.Uint64
	stripes [stripeCount]sync.Mutex
}

func newGuestMemory(bytes uint64) *guestMemory {
	pages := bytes / vmm.PageSize
	return &guestMemory{
		// A fresh allocation this large comes straight from the OS, zeroed
		// and not yet resident; untouched guest pages cost nothing.
		ram:   make([]byte, bytes),
		pages: pages,
		dirty: make([]atomic.Uint64, (pages+63)/64),
	}
}

// page returns page p's bytes.
func (m *guestMemory) page(p uint64) []byte {
	off := p * vmm.PageSize
	return m.ram[off : off+vmm.PageSize : off+vmm.PageSize]
}

// beginGuestWrite locks page p for a guest write and returns its bytes;
// endGuestWrite marks it dirty and unlocks it.
func (m *guestMemory) beginGuestWrite(p uint64) []byte {
	m.stripes[p%stripeCount].Lock()
	return m.page(p)
}

func (m *guestMemory) endGuestWrite(p uint64) {
	m.dirty[p/64].Or(1 << (p % 64))
	m.stripes[p%stripeCount].Unlock()
}

// checkRange validates [first, first+count) against guest memory.
func (m *guestMemory) checkRange(first, count uint64) error {
	if first > m.pages || count > m.pages-first {
		return fmt.Errorf("%w: pages [%d, %d+%d) of %d", vmm.ErrOutOfRange, first, first, count, m.pages)
	}
	return nil
}

// pageCount converts a buffer length to pages, refusing partial pages.
func pageCount(op string, n int) (uint64, error) {
	if n%vmm.PageSize != 0 {
		return 0, fmt.Errorf("%s: buffer of %d bytes is not a whole number of %d-byte pages", op, n, vmm.PageSize)
	}
	return uint64(n / vmm.PageSize), nil
}

// memoryFor returns guest memory with memMu read-locked, so Destroy cannot
// free it mid-call; the caller must call vm.memMu.RUnlock.
func (vm *VM) memoryFor(op string) (*guestMemory, error) {
	vm.memMu.RLock()
	if vm.mem == nil {
		vm.memMu.RUnlock()
		return nil, fmt.Errorf("%s: %w", op, vmm.ErrDestroyed)
	}
	return vm.mem, nil
}

// ReadPages copies len(dst)/vmm.PageSize pages starting at page first into
// dst. Each page is copied under its stripe lock, so a page is never torn
// by a running guest. Copying page by page also keeps dst in cache: one
// memmove of a megabyte or more uses non-temporal stores, which measured
// slower for a buffer that is about to be sent.
func (vm *VM) ReadPages(first uint64, dst []byte) error {
	const op = "reading guest pages"
	count, err := pageCount(op, len(dst))
	if err != nil {
		return err
	}
	m, err := vm.memoryFor(op)
	if err != nil {
		return err
	}
	defer vm.memMu.RUnlock()
	if err := m.checkRange(first, count); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for i := range count {
		p := first + i
		m.stripes[p%stripeCount].Lock()
		copy(dst[i*vmm.PageSize:], m.page(p))
		m.stripes[p%stripeCount].Unlock()
	}
	return nil
}

// VisitPages implements vmm.PageVisitor: fn sees each page in place, under
// its stripe lock, so hashing a paused guest's memory needs no copy.
func (vm *VM) VisitPages(first, count uint64, fn func(page uint64, data []byte)) error {
	const op = "visiting guest pages"
	m, err := vm.memoryFor(op)
	if err != nil {
		return err
	}
	defer vm.memMu.RUnlock()
	if err := m.checkRange(first, count); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	for i := range count {
		p := first + i
		m.stripes[p%stripeCount].Lock()
		fn(p, m.page(p))
		m.stripes[p%stripeCount].Unlock()
	}
	return nil
}

var _ vmm.PageVisitor = (*VM)(nil)

// WritePages copies src into guest memory starting at page first, without
// marking the pages dirty.
func (vm *VM) WritePages(first uint64, src []byte) error {
	const op = "writing guest pages"
	count, err := pageCount(op, len(src))
	if err != nil {
		return err
	}
	return vm.hostWrite(op, first, count, func(dst []byte, i uint64) {
		copy(dst, src[i*vmm.PageSize:(i+1)*vmm.PageSize])
	})
}

// ZeroPages sets count pages starting at first to zero, without marking
// them dirty.
func (vm *VM) ZeroPages(first, count uint64) error {
	return vm.hostWrite("zeroing guest pages", first, count, func(dst []byte, _ uint64) { clear(dst) })
}

// hostWrite applies fill to each page of [first, first+count).
func (vm *VM) hostWrite(op string, first, count uint64, fill func(page []byte, i uint64)) error {
	m, err := vm.memoryFor(op)
	if err != nil {
		return err
	}
	defer vm.memMu.RUnlock()
	if err := m.checkRange(first, count); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	vm.touched.Store(true)
	for i := range count {
		p := first + i
		m.stripes[p%stripeCount].Lock()
		fill(m.page(p), i)
		m.stripes[p%stripeCount].Unlock()
	}
	return nil
}

// TakeDirty reads and clears the dirty bits of pages [first, first+count)
// into bitmap: bit i%64 of bitmap[i/64] is page first+i.
func (vm *VM) TakeDirty(first, count uint64, bitmap []uint64) error {
	const op = "taking dirty bits"
	m, err := vm.memoryFor(op)
	if err != nil {
		return err
	}
	defer vm.memMu.RUnlock()
	if err := checkBitmap(m, first, count, bitmap); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	out := bitmap[:(count+63)/64]
	clear(out)
	forEachWord(first, count, func(w int, mask uint64) {
		word := &m.dirty[w]
		// Most words are clean in a converging migration: a plain load
		// skips the locked instruction for them.
		if word.Load()&mask == 0 {
			return
		}
		var taken uint64
		if mask == ^uint64(0) {
			taken = word.Swap(0)
		} else {
			taken = word.And(^mask) & mask
		}
		placeBits(out, first, w, taken)
	})
	return nil
}

// RestoreDirty ORs the bits of bitmap, laid out as for TakeDirty, back into
// the dirty log.
func (vm *VM) RestoreDirty(first, count uint64, bitmap []uint64) error {
	const op = "restoring dirty bits"
	m, err := vm.memoryFor(op)
	if err != nil {
		return err
	}
	defer vm.memMu.RUnlock()
	if err := checkBitmap(m, first, count, bitmap); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	forEachWord(first, count, func(w int, mask uint64) {
		if bits := gatherBits(bitmap, first, w) & mask; bits != 0 {
			m.dirty[w].Or(bits)
		}
	})
	return nil
}

func checkBitmap(m *guestMemory, first, count uint64, bitmap []uint64) error {
	if err := m.checkRange(first, count); err != nil {
		return err
	}
	if uint64(len(bitmap)) < (count+63)/64 {
		return fmt.Errorf("bitmap of %d words holds fewer than %d bits", len(bitmap), count)
	}
	return nil
}

// forEachWord calls fn for each dirty-log word overlapping pages [first,
// first+count), with the mask of that word's bits inside the range.
func forEachWord(first, count uint64, fn func(w int, mask uint64)) {
	if count == 0 {
		return
	}
	end := first + count // exclusive
	for w := first / 64; w*64 < end; w++ {
		mask := ^uint64(0)
		if lo := w * 64; first > lo {
			mask &= ^uint64(0) << (first - lo)
		}
		if hi := w*64 + 64; end < hi {
			mask &= ^uint64(0) >> (hi - end)
		}
		fn(int(w), mask)
	}
}

// placeBits ORs the in-range bits of dirty-log word w into out, where bit i
// of out is page first+i.
func placeBits(out []uint64, first uint64, w int, taken uint64) {
	shift := first % 64
	k := uint64(w) - first/64 // out word that receives bits >= shift
	if shift == 0 {
		out[k] |= taken
		return
	}
	if k < uint64(len(out)) {
		out[k] |= taken >> shift
	}
	if k > 0 {
		out[k-1] |= taken << (64 - shift)
	}
}

// gatherBits is placeBits' inverse: the bits of bitmap (bit i is page
// first+i) that belong to dirty-log word w, in that word's layout.
func gatherBits(bitmap []uint64, first uint64, w int) uint64 {
	shift := first % 64
	k := uint64(w) - first/64
	if shift == 0 {
		return bitmap[k]
	}
	var v uint64
	if k < uint64(len(bitmap)) {
		v |= bitmap[k] << shift
	}
	if k > 0 {
		v |= bitmap[k-1] >> (64 - shift)
	}
	return v
}

// DirtyCount returns the number of pages currently marked dirty, without
// clearing them.
func (vm *VM) DirtyCount() (uint64, error) {
	m, err := vm.memoryFor("counting dirty pages")
	if err != nil {
		return 0, err
	}
	defer vm.memMu.RUnlock()
	var n int
	for i := range m.dirty {
		n += bits.OnesCount64(m.dirty[i].Load())
	}
	return uint64(n), nil
}
