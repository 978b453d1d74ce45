// Package zeropage tells whether a guest page is all zero, at the speed
// memory delivers it: the RAM push sends such pages as a marker instead of
// 4 KiB, and the memory scans skip hashing them. On amd64 with AVX2 it
// ORs 256 bytes per step in vector registers; elsewhere it ORs eight
// 64-bit words per step.
package zeropage

import "encoding/binary"

// IsZero reports whether every byte of p is zero.
func IsZero(p []byte) bool {
	// Most pages that hold data have a non-zero byte near the start:
	// answer those before the vector loop's call.
	if len(p) >= 8 && binary.LittleEndian.Uint64(p) != 0 {
		return false
	}
	n := len(p) &^ (blockSize - 1)
	if n > 0 && useAsm {
		if !isZeroAsm(p[:n]) {
			return false
		}
		p = p[n:]
	}
	return isZeroGeneric(p)
}

// isZeroGeneric is the portable version: eight words ORed per step, so
// one branch covers 64 bytes.
func isZeroGeneric(p []byte) bool {
	for len(p) >= 64 {
		v := binary.LittleEndian.Uint64(p) | binary.LittleEndian.Uint64(p[8:]) |
			binary.LittleEndian.Uint64(p[16:]) | binary.LittleEndian.Uint64(p[24:]) |
			binary.LittleEndian.Uint64(p[32:]) | binary.LittleEndian.Uint64(p[40:]) |
			binary.LittleEndian.Uint64(p[48:]) | binary.LittleEndian.Uint64(p[56:])
		if v != 0 {
			return false
		}
		p = p[64:]
	}
	for len(p) >= 8 {
		if binary.LittleEndian.Uint64(p) != 0 {
			return false
		}
		p = p[8:]
	}
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}
