//go:build linux && amd64

package kvm

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/pagebits"
)

// mapGuestMemory maps guest RAM, reserving no swap for it: pages cost
// memory only once touched. A host without the address space for it is
// vmm.ErrCapacity, which the caller can tell from a broken KVM.
func mapGuestMemory(bytes uint64) ([]byte, error) {
	if uint64(int(bytes)) != bytes {
		return nil, fmt.Errorf("%w: memory %s does not fit this host's address space", vmm.ErrCapacity, vmm.FormatBytes(bytes))
	}
	mem, err := unix.Mmap(-1, 0, int(bytes), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if errors.Is(err, unix.ENOMEM) {
		return nil, fmt.Errorf("mapping %s of guest memory: %w: %w", vmm.FormatBytes(bytes), vmm.ErrCapacity, err)
	}
	if err != nil {
		return nil, fmt.Errorf("mapping %s of guest memory: %w", vmm.FormatBytes(bytes), err)
	}
	// Transparent huge pages, as QEMU asks for its guests: a migration
	// reading memory the guest never touched then maps the kernel's huge
	// zero page once per 2 MiB rather than faulting in every 4 KiB page.
	// Without THP in the kernel the hint changes nothing.
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	return mem, nil
}

// pageRange checks [first, first+count) against guest memory.
func (vm *VM) pageRange(op string, first, count uint64) error {
	pages := vm.layout.pages
	if first > pages || count > pages-first {
		return fmt.Errorf("%s: %w: pages [%d, +%d) of %d", op, vmm.ErrOutOfRange, first, count, pages)
	}
	return nil
}

// memory returns guest memory under memMu (held shared by the caller), or
// an error once the VM is destroyed.
func (vm *VM) memory(op string) ([]byte, error) {
	if vm.mem == nil {
		return nil, fmt.Errorf("%s: %w", op, vmm.ErrDestroyed)
	}
	return vm.mem, nil
}

func wholePages(op string, n int) (uint64, error) {
	if n%vmm.PageSize != 0 {
		return 0, fmt.Errorf("%s: buffer of %d bytes is not a whole number of %d-byte pages", op, n, vmm.PageSize)
	}
	return uint64(n / vmm.PageSize), nil
}

// ReadPages copies pages from guest memory; a running guest may be
// writing them (the dirty log catches that).
func (vm *VM) ReadPages(first uint64, dst []byte) error {
	const op = "reading guest pages"
	n, err := wholePages(op, len(dst))
	if err != nil {
		return err
	}
	vm.memMu.RLock()
	defer vm.memMu.RUnlock()
	mem, err := vm.memory(op)
	if err != nil {
		return err
	}
	if err := vm.pageRange(op, first, n); err != nil {
		return err
	}
	copy(dst, mem[first*vmm.PageSize:])
	return nil
}

// VisitPages implements vmm.PageVisitor: fn sees each page in the guest's
// mapping itself, sparing ReadPages's copy when a paused guest is hashed.
// A running guest may change a page while fn reads it, as with ReadPages.
func (vm *VM) VisitPages(first, count uint64, fn func(page uint64, data []byte)) error {
	const op = "visiting guest pages"
	vm.memMu.RLock()
	defer vm.memMu.RUnlock()
	mem, err := vm.memory(op)
	if err != nil {
		return err
	}
	if err := vm.pageRange(op, first, count); err != nil {
		return err
	}
	for p := first; p < first+count; p++ {
		off := p * vmm.PageSize
		fn(p, mem[off:off+vmm.PageSize:off+vmm.PageSize])
	}
	return nil
}

var _ vmm.PageVisitor = (*VM)(nil)

// WritePages copies src into guest memory. Host writes do not go through
// the guest's page tables, so KVM's dirty log does not see them.
func (vm *VM) WritePages(first uint64, src []byte) error {
	const op = "writing guest pages"
	n, err := wholePages(op, len(src))
	if err != nil {
		return err
	}
	vm.memMu.RLock()
	defer vm.memMu.RUnlock()
	mem, err := vm.memory(op)
	if err != nil {
		return err
	}
	if err := vm.pageRange(op, first, n); err != nil {
		return err
	}
	copy(mem[first*vmm.PageSize:], src)
	return nil
}

// ZeroPages sets count pages starting at first to zero.
func (vm *VM) ZeroPages(first, count uint64) error {
	const op = "zeroing guest pages"
	vm.memMu.RLock()
	defer vm.memMu.RUnlock()
	mem, err := vm.memory(op)
	if err != nil {
		return err
	}
	if err := vm.pageRange(op, first, count); err != nil {
		return err
	}
	clear(mem[first*vmm.PageSize : (first+count)*vmm.PageSize])
	return nil
}

// fetchDirtyLog reads and clears KVM's dirty log for the whole slot and
// ORs it into pending; vm.dirtyMu and vm.memMu (shared) must be held.
func (vm *VM) fetchDirtyLog() error {
	log := kvmDirtyLog{Bitmap: uintptr(unsafe.Pointer(&vm.logBuf[0]))}
	if err := ioctlPtr(vm.vmFD, ioctlGetDirtyLog, &log); err != nil {
		return fmt.Errorf("KVM_GET_DIRTY_LOG: %w", err)
	}
	for i, w := range vm.logBuf {
		vm.pending[i] |= w
	}
	return nil
}

// TakeDirty reads and clears the dirty bits of pages [first, first+count).
// KVM's log covers the whole memory slot and is cleared as it is read, so
// bits outside the range wait in a host bitmap for a later call.
func (vm *VM) TakeDirty(first, count uint64, bitmap []uint64) error {
	const op = "taking dirty pages"
	if uint64(len(bitmap)) < (count+63)/64 {
		return fmt.Errorf("%s: bitmap of %d words holds fewer than %d bits", op, len(bitmap), count)
	}
	vm.memMu.RLock()
	defer vm.memMu.RUnlock()
	if _, err := vm.memory(op); err != nil {
		return err
	}
	if err := vm.pageRange(op, first, count); err != nil {
		return err
	}
	vm.dirtyMu.Lock()
	defer vm.dirtyMu.Unlock()
	if err := vm.fetchDirtyLog(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	clear(bitmap[:(count+63)/64])
	for i := uint64(0); i < count; i += 64 {
		n := min(64, count-i)
		bitmap[i/64] = pagebits.Take(vm.pending, first+i, n)
	}
	return nil
}

// RestoreDirty ORs bitmap's first count bits into the host bitmap, where
// the next TakeDirty of those pages finds them.
func (vm *VM) RestoreDirty(first, count uint64, bitmap []uint64) error {
	const op = "restoring dirty pages"
	if uint64(len(bitmap)) < (count+63)/64 {
		return fmt.Errorf("%s: bitmap of %d words holds fewer than %d bits", op, len(bitmap), count)
	}
	vm.memMu.RLock()
	defer vm.memMu.RUnlock()
	if _, err := vm.memory(op); err != nil {
		return err
	}
	if err := vm.pageRange(op, first, count); err != nil {
		return err
	}
	vm.dirtyMu.Lock()
	defer vm.dirtyMu.Unlock()
	for i := uint64(0); i < count; i += 64 {
		n := min(64, count-i)
		w := bitmap[i/64]
		if n < 64 {
			w &= 1<<n - 1
		}
		pagebits.Put(vm.pending, first+i, n, w)
	}
	return nil
}

// GuestContinuity reads the guest's TSC ring from its memory. While the
// guest runs, only the samples that were complete when the copy started
// and not overwritten before it ended are checked.
func (vm *VM) GuestContinuity() (vmm.Continuity, error) {
	const op = "reading the TSC ring"
	vm.memMu.RLock()
	defer vm.memMu.RUnlock()
	mem, err := vm.memory(op)
	if err != nil {
		return vmm.Continuity{}, err
	}
	count := (*uint64)(unsafe.Pointer(&mem[hdrCount]))
	before := atomic.LoadUint64(count)
	ring := make([]byte, RingBytes)
	copy(ring, mem)
	after := atomic.LoadUint64(count)
	if before == after {
		c, err := ParseRing(ring)
		if err != nil {
			return c, fmt.Errorf("%s: %w", op, err)
		}
		return c, nil
	}
	if _, err := ParseRing(ring); err != nil {
		return vmm.Continuity{}, fmt.Errorf("%s: %w", op, err)
	}
	lo := uint64(0)
	if after+1 > RingCapacity {
		lo = after + 1 - RingCapacity
	}
	return checkRing(ring[ringPage*vmm.PageSize:], lo, before), nil
}
