package pagebits

import "math/bits"

// Bitmap is a page bitmap: bit i%64 of word i/64 is page i.
type Bitmap []uint64

// New returns an empty bitmap of pages bits.
func New(pages uint64) Bitmap { return make(Bitmap, Words(pages)) }

// Words is the number of words that hold n bits.
func Words(n uint64) uint64 { return (n + 63) / 64 }

// Set sets bit i.
func (b Bitmap) Set(i uint64) { b[i/64] |= 1 << (i % 64) }

// Get reports bit i.
func (b Bitmap) Get(i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }

// SetRange sets bits [first, first+count).
func (b Bitmap) SetRange(first, count uint64) {
	for count > 0 {
		n := min(64-first%64, count)
		Put(b, first, n, lowBits(n))
		first, count = first+n, count-n
	}
}

// Fill sets the first n bits and clears the rest of the last word.
func (b Bitmap) Fill(n uint64) {
	for i := range b {
		b[i] = ^uint64(0)
	}
	if r := n % 64; r != 0 {
		b[len(b)-1] = lowBits(r)
	}
}

// Or sets every bit that is set in o.
func (b Bitmap) Or(o Bitmap) {
	for i := range b {
		b[i] |= o[i]
	}
}

// AndNot clears every bit that is set in o.
func (b Bitmap) AndNot(o Bitmap) {
	for i := range b {
		b[i] &^= o[i]
	}
}

// Clear clears every bit.
func (b Bitmap) Clear() { clear(b) }

// Count is the number of set bits.
func (b Bitmap) Count() uint64 {
	var n int
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return uint64(n)
}

// Runs calls fn for each maximal run of set bits, in order, each at most
// max bits long. It stops at the first error.
func (b Bitmap) Runs(max uint64, fn func(first, count uint64) error) error {
	var start, n uint64
	flush := func() error {
		if n == 0 {
			return nil
		}
		err := fn(start, n)
		n = 0
		return err
	}
	for wi, w := range b {
		if w == 0 {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		base := uint64(wi) * 64
		for w != 0 {
			page := base + uint64(bits.TrailingZeros64(w))
			if n > 0 && (start+n != page || n == max) {
				if err := flush(); err != nil {
					return err
				}
			}
			if n == 0 {
				start = page
			}
			n++
			w &= w - 1
		}
	}
	return flush()
}

// ClearRuns calls fn for each maximal run of clear bits among the first n,
// in order, each at most max bits long. It stops at the first error. Wholly
// clear words are taken 64 bits at a time, so the runs of a bitmap that is
// nearly all set (the pages a destination still lacks) cost a pass over its
// words and no allocation.
func (b Bitmap) ClearRuns(n, max uint64, fn func(first, count uint64) error) error {
	var start, cnt uint64
	flush := func() error {
		if cnt == 0 {
			return nil
		}
		err := fn(start, cnt)
		cnt = 0
		return err
	}
	for wi := range b {
		base := uint64(wi) * 64
		if base >= n {
			break
		}
		w := ^b[wi]
		if rem := n - base; rem < 64 {
			w &= lowBits(rem)
		}
		if w == 0 {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		if w == ^uint64(0) && cnt+64 <= max && (cnt == 0 || start+cnt == base) {
			if cnt == 0 {
				start = base
			}
			cnt += 64
			continue
		}
		for w != 0 {
			page := base + uint64(bits.TrailingZeros64(w))
			if cnt > 0 && (start+cnt != page || cnt == max) {
				if err := flush(); err != nil {
					return err
				}
			}
			if cnt == 0 {
				start = page
			}
			cnt++
			w &= w - 1
		}
	}
	return flush()
}

// Extract returns bits [pos, pos+n) of b (n ≤ 64) at bit 0.
func Extract(b []uint64, pos, n uint64) uint64 {
	word, shift := pos/64, pos%64
	out := b[word] >> shift
	if shift != 0 && shift+n > 64 {
		out |= b[word+1] << (64 - shift)
	}
	return out & lowBits(n)
}

// Take returns bits [pos, pos+n) of b (n ≤ 64) at bit 0 and clears them.
func Take(b []uint64, pos, n uint64) uint64 {
	out := Extract(b, pos, n)
	word, shift := pos/64, pos%64
	mask := lowBits(n)
	b[word] &^= mask << shift
	if shift != 0 && shift+n > 64 {
		b[word+1] &^= mask >> (64 - shift)
	}
	return out
}

// Put ORs the n low bits of w (n ≤ 64; higher bits must be clear) into b
// at bit pos.
func Put(b []uint64, pos, n, w uint64) {
	word, shift := pos/64, pos%64
	b[word] |= w << shift
	if shift != 0 && shift+n > 64 {
		b[word+1] |= w >> (64 - shift)
	}
}

func lowBits(n uint64) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}
