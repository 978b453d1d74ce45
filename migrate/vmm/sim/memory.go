package sim

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/pagebits"
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
	dirty []atomic.Uint64
	// nonEmpty has one bit per word of dirty, set whenever a bit of that
	// word is: TakeDirty visits only those words, so harvesting a mostly
	// clean log of a large guest (the pause's, in a converged migration)
	// costs what is dirty, not a walk of every word. A set bit may cover
	// a word already emptied; a word with a bit set always has its bit.
	nonEmpty []atomic.Uint64
	stripes  [stripeCount]sync.Mutex
}

func newGuestMemory(bytes uint64) (*guestMemory, error) {
	if err := checkFits(bytes); err != nil {
		return nil, err
	}
	pages := bytes / vmm.PageSize
	// A fresh allocation this large comes straight from the OS, zeroed
	// and not yet resident; untouched guest pages cost nothing.
	ram := make([]byte, bytes)
	adviseHugePages(ram)
	words := (pages + 63) / 64
	return &guestMemory{
		ram:      ram,
		pages:    pages,
		dirty:    make([]atomic.Uint64, words),
		nonEmpty: make([]atomic.Uint64, (words+63)/64),
	}, nil
}

// allocSlack is what the Go runtime needs beside a guest's RAM to make it
// (span and arena metadata, the dirty log), with room to spare.
const allocSlack = 64 << 20

// checkFits refuses guest memory the process could not allocate now: a
// failed Go allocation is a fatal error, not one make can return.
func checkFits(bytes uint64) error {
	host, how := vmm.HostMemory()
	if bytes > host || host-bytes < allocSlack {
		return fmt.Errorf("%w: memory %s does not fit the %s this process can still allocate (%s)",
			vmm.ErrCapacity, vmm.FormatBytes(bytes), vmm.FormatBytes(host), how)
	}
	return nil
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
	m.markDirty(p/64, 1<<(p%64))
	m.stripes[p%stripeCount].Unlock()
}

// markDirty sets bits in dirty word w, then its summary bit: in that
// order, so a harvest that clears the summary bit before it takes the
// word (TakeDirty) never leaves a set bit behind a clear summary.
func (m *guestMemory) markDirty(w, bits uint64) {
	m.dirty[w].Or(bits)
	m.nonEmpty[w/64].Or(1 << (w % 64))
}

// clearDirty empties the whole dirty log.
func (m *guestMemory) clearDirty() {
	for i := range m.dirty {
		m.dirty[i].Store(0)
	}
	for i := range m.nonEmpty {
		m.nonEmpty[i].Store(0)
	}
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

// WritablePages implements vmm.PageWriter for a VM that has not run: no
// vCPU writes its memory, so the pages need no stripe lock, and a later
// Resume orders these writes before any the guest makes. Memory the
// slice holds stays allocated even if the VM is destroyed meanwhile.
func (vm *VM) WritablePages(first, count uint64) ([]byte, error) {
	const op = "writing guest pages in place"
	if err := vmm.RequireState(op, vm.State(), vmm.StateCreated); err != nil {
		return nil, err
	}
	m, err := vm.memoryFor(op)
	if err != nil {
		return nil, err
	}
	defer vm.memMu.RUnlock()
	if err := m.checkRange(first, count); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	vm.touched.Store(true)
	return m.ram[first*vmm.PageSize : (first+count)*vmm.PageSize : (first+count)*vmm.PageSize], nil
}

var _ vmm.PageWriter = (*VM)(nil)

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
	out := bitmap[:pagebits.Words(count)]
	clear(out)
	if count == 0 {
		return nil
	}
	end := first + count // exclusive
	firstWord, lastWord := first/64, (end-1)/64
	for sw := firstWord / 64; sw <= lastWord/64; sw++ {
		summary := m.nonEmpty[sw].Load()
		for summary != 0 {
			w := sw*64 + uint64(bits.TrailingZeros64(summary))
			summary &= summary - 1
			if w < firstWord || w > lastWord {
				continue
			}
			lo := max(first, w*64)
			n := min(w*64+64, end) - lo
			shift := lo - w*64
			mask := lowBits(n) << shift
			word := &m.dirty[w]
			var taken uint64
			if mask == ^uint64(0) {
				// The whole word is taken: clear its summary bit first,
				// so a write racing with the swap sets it again.
				m.nonEmpty[sw].And(^(1 << (w % 64)))
				taken = word.Swap(0)
			} else {
				taken = word.And(^mask) & mask
			}
			if taken != 0 {
				pagebits.Put(out, lo-first, n, taken>>shift)
			}
		}
	}
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
	forEachWord(first, count, func(w, lo, n uint64) {
		if bits := pagebits.Extract(bitmap, lo-first, n); bits != 0 {
			m.markDirty(w, bits<<(lo-w*64))
		}
	})
	return nil
}

func checkBitmap(m *guestMemory, first, count uint64, bitmap []uint64) error {
	if err := m.checkRange(first, count); err != nil {
		return err
	}
	if uint64(len(bitmap)) < pagebits.Words(count) {
		return fmt.Errorf("bitmap of %d words holds fewer than %d bits", len(bitmap), count)
	}
	return nil
}

// forEachWord calls fn for each dirty-log word w overlapping pages [first,
// first+count), with the run of n pages from page lo that lies in both.
func forEachWord(first, count uint64, fn func(w, lo, n uint64)) {
	end := first + count // exclusive
	for lo := first; lo < end; {
		w := lo / 64
		n := min(w*64+64, end) - lo
		fn(w, lo, n)
		lo += n
	}
}

func lowBits(n uint64) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
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
