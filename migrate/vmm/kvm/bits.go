package kvm

// takeBits returns bits [pos, pos+n) of b (n ≤ 64) at bit 0 and clears them.
func takeBits(b []uint64, pos, n uint64) uint64 {
	word, shift := pos/64, pos%64
	mask := ^uint64(0)
	if n < 64 {
		mask = 1<<n - 1
	}
	out := (b[word] >> shift) & mask
	b[word] &^= mask << shift
	if shift != 0 && shift+n > 64 {
		out |= (b[word+1] << (64 - shift)) & mask
		b[word+1] &^= mask >> (64 - shift)
	}
	return out
}

// orBits ORs the n low bits of w into b at bit pos.
func orBits(b []uint64, pos, n, w uint64) {
	word, shift := pos/64, pos%64
	b[word] |= w << shift
	if shift != 0 && shift+n > 64 {
		b[word+1] |= w >> (64 - shift)
	}
}
