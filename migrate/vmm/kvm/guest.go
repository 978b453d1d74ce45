package kvm

import (
	"encoding/binary"
	"fmt"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// The guest's physical memory layout, in pages. Everything below
// firstDirtyPage is written by Boot (the "firmware") or by the guest's
// bookkeeping; the guest's dirtying workload writes only the pages from
// firstDirtyPage to the end of memory.
const (
	headerPage  = 0  // ring header and the guest's counters
	ringPage    = 1  // first page of TSC ring slots
	ringPages   = 32 // RingCapacity samples of 8 bytes
	codePage    = ringPage + ringPages
	pml4Page    = codePage + 1
	pdptPage    = pml4Page + 1
	firstPDPage = pdptPage + 1
)

// Offsets in the header page. The guest program hard-codes these as
// displacements from RSI (which holds the header's address, 0).
const (
	hdrMagic    = 0                     // ringMagic, written at Boot
	hdrCapacity = 8                     // RingCapacity
	hdrCount    = 16                    // samples ever stored; slot = count % capacity
	hdrExitPre  = 24                    // guest TSC read just before the last OUT
	hdrExitPost = 32                    // guest TSC read just after the last OUT completed
	hdrExits    = 40                    // OUTs completed
	hdrDirtied  = 48                    // pages written by the dirtying workload
	ringMagic   = 0x4d54_4b56_4d52_4e47 // "MTKVMRNG"
	exitPort    = 0x10
	// RingCapacity is the number of TSC samples the guest's ring holds;
	// a power of two, as the program masks the count with RingCapacity-1.
	RingCapacity = ringPages * vmm.PageSize / 8
)

// The guest program, 64-bit code run at CPL 3 (ring 3 runs natively under
// this host's kvm_pvm; ring 0 is emulated). It is hand-assembled; the
// bytes were checked with GNU as/objdump when written. Registers set by
// Boot: RSI header address (0), RBX last sample TSC, R15 sample period,
// R8 last dirty-write TSC, R9 dirty period, R10 next page to dirty, R11
// end of the dirty area, R12 start of the dirty area, R13 last exit TSC,
// R14 exit period (periods in TSC ticks). The loop:
//
//	top:      rdtsc; rax = edx:eax
//	          if rax-rbx >= r15 { rbx = rax; ring[count%cap] = rax; count++ }
//	          if rax-r8 >= r9  { r8 = rax; [r10] = rax; dirtied++;
//	                             r10 += 4096; if r10 >= r11 { r10 = r12 } }
//	          if rax-r13 < r14 { goto top }
//	          r13 = rax; exitPre = rax; out 0x10, al
//	          rdtsc; exitPost = edx:eax; exits++; goto top
//
// Unsigned compares make a period of 2^64-1 mean "never" and 0 "always".
var guestProgram = []byte{
	0x0f, 0x31, // 00 rdtsc
	0x48, 0xc1, 0xe2, 0x20, // 02 shl $32, %rdx
	0x48, 0x09, 0xd0, // 06 or %rdx, %rax
	0x48, 0x89, 0xc2, // 09 mov %rax, %rdx
	0x48, 0x29, 0xda, // 0c sub %rbx, %rdx
	0x4c, 0x39, 0xfa, // 0f cmp %r15, %rdx
	0x72, 0x20, // 12 jb 0x34 (nosample)
	0x48, 0x89, 0xc3, // 14 mov %rax, %rbx
	0x48, 0x8b, 0x4e, 0x10, // 17 mov 16(%rsi), %rcx        (count)
	0x48, 0x89, 0xcf, // 1b mov %rcx, %rdi
	0x48, 0x81, 0xe7, 0xff, 0x3f, 0x00, 0x00, // 1e and $RingCapacity-1, %rdi
	0x48, 0x89, 0x84, 0xfe, 0x00, 0x10, 0x00, 0x00, // 25 mov %rax, 0x1000(%rsi,%rdi,8)
	0x48, 0xff, 0xc1, // 2d inc %rcx
	0x48, 0x89, 0x4e, 0x10, // 30 mov %rcx, 16(%rsi)
	0x48, 0x89, 0xc2, // 34 nosample: mov %rax, %rdx
	0x4c, 0x29, 0xc2, // 37 sub %r8, %rdx
	0x4c, 0x39, 0xca, // 3a cmp %r9, %rdx
	0x72, 0x19, // 3d jb 0x58 (nodirty)
	0x49, 0x89, 0xc0, // 3f mov %rax, %r8
	0x49, 0x89, 0x02, // 42 mov %rax, (%r10)
	0x48, 0xff, 0x46, 0x30, // 45 incq 48(%rsi)             (dirtied)
	0x49, 0x81, 0xc2, 0x00, 0x10, 0x00, 0x00, // 49 add $4096, %r10
	0x4d, 0x39, 0xda, // 50 cmp %r11, %r10
	0x72, 0x03, // 53 jb 0x58
	0x4d, 0x89, 0xe2, // 55 mov %r12, %r10
	0x48, 0x89, 0xc2, // 58 nodirty: mov %rax, %rdx
	0x4c, 0x29, 0xea, // 5b sub %r13, %rdx
	0x4c, 0x39, 0xf2, // 5e cmp %r14, %rdx
	0x72, 0x9d, // 61 jb 0x00 (top)
	0x49, 0x89, 0xc5, // 63 mov %rax, %r13
	0x48, 0x89, 0x46, 0x18, // 66 mov %rax, 24(%rsi)         (exitPre)
	0xe6, 0x10, // 6a out %al, $0x10
	0x0f, 0x31, // 6c rdtsc
	0x48, 0xc1, 0xe2, 0x20, // 6e shl $32, %rdx
	0x48, 0x09, 0xd0, // 72 or %rdx, %rax
	0x48, 0x89, 0x46, 0x20, // 75 mov %rax, 32(%rsi)         (exitPost)
	0x48, 0xff, 0x46, 0x28, // 79 incq 40(%rsi)             (exits)
	0xeb, 0x81, // 7d jmp 0x00 (top)
}

// Page-table entry bits. Accessed and Dirty are preset so the CPU never
// writes the tables (which would put them in the dirty log).
const (
	ptePresent  = 1 << 0
	pteWritable = 1 << 1
	pteUser     = 1 << 2
	pteAccessed = 1 << 5
	pteDirty    = 1 << 6
	pteLarge    = 1 << 7
	pteTable    = ptePresent | pteWritable | pteUser | pteAccessed
)

const (
	hugePage  = 2 << 20
	gibibyte  = 1 << 30
	maxMemory = 512 * gibibyte // one PDPT
)

// layout is where Boot puts things in a guest of a given size.
type layout struct {
	pages      uint64
	pdPages    uint64
	dirtyFirst uint64 // first page the workload dirties
}

func newLayout(memoryBytes uint64) (layout, error) {
	if memoryBytes == 0 || memoryBytes%hugePage != 0 {
		return layout{}, fmt.Errorf("memory %d bytes is not a positive multiple of 2 MiB (the guest maps 2 MiB pages)", memoryBytes)
	}
	if memoryBytes > maxMemory {
		return layout{}, fmt.Errorf("memory %d bytes exceeds the %d bytes one page-directory-pointer table maps", memoryBytes, uint64(maxMemory))
	}
	l := layout{pages: memoryBytes / vmm.PageSize, pdPages: (memoryBytes + gibibyte - 1) / gibibyte}
	l.dirtyFirst = firstPDPage + l.pdPages
	if l.dirtyFirst >= l.pages {
		return layout{}, fmt.Errorf("memory %d bytes leaves no page for the workload", memoryBytes)
	}
	return l, nil
}

// writeFirmware writes the ring header, the program and the identity page
// tables (2 MiB pages, user-accessible) into mem, which must be zero.
func (l layout) writeFirmware(mem []byte) {
	hdr := mem[headerPage*vmm.PageSize:]
	binary.LittleEndian.PutUint64(hdr[hdrMagic:], ringMagic)
	binary.LittleEndian.PutUint64(hdr[hdrCapacity:], RingCapacity)
	copy(mem[codePage*vmm.PageSize:], guestProgram)
	binary.LittleEndian.PutUint64(mem[pml4Page*vmm.PageSize:], pdptPage*vmm.PageSize|pteTable)
	for i := range l.pdPages {
		binary.LittleEndian.PutUint64(mem[pdptPage*vmm.PageSize+i*8:], (firstPDPage+i)*vmm.PageSize|pteTable)
	}
	for i := range l.pages * vmm.PageSize / hugePage {
		pd := firstPDPage + i/512
		binary.LittleEndian.PutUint64(mem[pd*vmm.PageSize+(i%512)*8:], i*hugePage|pteTable|pteDirty|pteLarge)
	}
}

// RingBytes is how many bytes from the start of guest memory ParseRing
// needs: the header page and the slots.
const RingBytes = (ringPage + ringPages) * vmm.PageSize

// ParseRing checks the guest's TSC ring held in ring, a copy of the first
// RingBytes of guest memory: its samples, oldest to newest across the
// wrap, must never decrease.
func ParseRing(ring []byte) (vmm.Continuity, error) {
	if len(ring) < RingBytes {
		return vmm.Continuity{}, fmt.Errorf("TSC ring: %d bytes, want %d", len(ring), RingBytes)
	}
	if magic := binary.LittleEndian.Uint64(ring[hdrMagic:]); magic != ringMagic {
		return vmm.Continuity{}, fmt.Errorf("%w: magic %#x, want %#x", ErrNoRing, magic, uint64(ringMagic))
	}
	if c := binary.LittleEndian.Uint64(ring[hdrCapacity:]); c != RingCapacity {
		return vmm.Continuity{}, fmt.Errorf("TSC ring: capacity %d, want %d", c, RingCapacity)
	}
	count := binary.LittleEndian.Uint64(ring[hdrCount:])
	return checkRing(ring[ringPage*vmm.PageSize:], count-min(count, RingCapacity), count), nil
}

// checkRing checks the samples of logical indices [lo, hi) in slots; the
// sample of index k is in slot k % RingCapacity.
func checkRing(slots []byte, lo, hi uint64) vmm.Continuity {
	c := vmm.Continuity{Monotonic: true}
	if hi <= lo {
		return c
	}
	c.Samples = int(hi - lo)
	var prev uint64
	for k := lo; k < hi; k++ {
		s := binary.LittleEndian.Uint64(slots[k%RingCapacity*8:])
		if k > lo && s < prev && c.Monotonic {
			c.Monotonic, c.FirstBad = false, int(k-lo)
		}
		prev = s
	}
	c.Last = prev
	return c
}
