package vmm

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// checksumChunkPages is how many pages Checksum reads per ReadPages call:
// large enough to amortise the call, small enough to stay in cache.
const checksumChunkPages = 256

// Checksum returns a 64-bit checksum of all of vm's guest memory, read
// through ReadPages. Two VMs whose memory is equal have equal checksums,
// in any process on any host; the value is for comparing a source and a
// destination after a migration, not a cryptographic digest. The VM
// should be paused (or not yet resumed) for the result to mean anything.
func Checksum(vm VM) (uint64, error) {
	return ChecksumPages(vm, 0, vm.Spec().Pages())
}

// ChecksumPages is Checksum over pages [first, first+count).
//
// The algorithm is fixed: four FNV-1a lanes over little-endian 64-bit
// words, lane i taking words i, i+4, i+8, ..., each lane seeded with the
// FNV offset basis plus i; the lanes are folded with the page count and
// finished with the splitmix64 finaliser. Four lanes run at several GB/s
// where one FNV chain is bound by multiply latency.
func ChecksumPages(vm VM, first, count uint64) (uint64, error) {
	var h pageHasher
	h.reset()
	buf := make([]byte, min(count, checksumChunkPages)*PageSize)
	for done := uint64(0); done < count; {
		n := min(count-done, checksumChunkPages)
		chunk := buf[:n*PageSize]
		if err := vm.ReadPages(first+done, chunk); err != nil {
			return 0, fmt.Errorf("checksumming guest memory: %w", err)
		}
		h.write(chunk)
		done += n
	}
	return h.sum(count), nil
}

const (
	fnvOffset = 0xcbf2_9ce4_8422_2325
	fnvPrime  = 0x100_0000_01b3
)

type pageHasher struct{ lanes [4]uint64 }

func (h *pageHasher) reset() {
	for i := range h.lanes {
		h.lanes[i] = fnvOffset + uint64(i)
	}
}

// write hashes b, whose length is a multiple of 32 (whole pages are).
func (h *pageHasher) write(b []byte) {
	l0, l1, l2, l3 := h.lanes[0], h.lanes[1], h.lanes[2], h.lanes[3]
	for ; len(b) >= 32; b = b[32:] {
		l0 = (l0 ^ binary.LittleEndian.Uint64(b)) * fnvPrime
		l1 = (l1 ^ binary.LittleEndian.Uint64(b[8:])) * fnvPrime
		l2 = (l2 ^ binary.LittleEndian.Uint64(b[16:])) * fnvPrime
		l3 = (l3 ^ binary.LittleEndian.Uint64(b[24:])) * fnvPrime
	}
	h.lanes = [4]uint64{l0, l1, l2, l3}
}

func (h *pageHasher) sum(pages uint64) uint64 {
	x := pages
	for i, l := range h.lanes {
		x = mix64(x ^ bits.RotateLeft64(l, 16*i))
	}
	return x
}

// mix64 is the splitmix64 finaliser.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58_476d_1ce4_e5b9
	z = (z ^ (z >> 27)) * 0x94d0_49bb_1331_11eb
	return z ^ (z >> 31)
}
