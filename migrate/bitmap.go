package migrate

import "math/bits"

// bitmap is a page bitmap: bit i%64 of word i/64 is page i, the layout
// vmm.VM.TakeDirty uses.
type bitmap []uint64

func newBitmap(pages uint64) bitmap { return make(bitmap, (pages+63)/64) }

func (b bitmap) set(i uint64)      { b[i/64] |= 1 << (i % 64) }
func (b bitmap) get(i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }

func (b bitmap) setRange(first, count uint64) {
	for i := first; i < first+count; i++ {
		b.set(i)
	}
}

// fill sets the first n bits.
func (b bitmap) fill(n uint64) {
	for i := range b {
		b[i] = ^uint64(0)
	}
	if r := n % 64; r != 0 {
		b[len(b)-1] = 1<<r - 1
	}
}

func (b bitmap) or(o bitmap) {
	for i := range b {
		b[i] |= o[i]
	}
}

func (b bitmap) clear() {
	for i := range b {
		b[i] = 0
	}
}

func (b bitmap) count() uint64 {
	var n int
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return uint64(n)
}

// runs calls fn for each maximal run of set bits, in order, each at most
// max pages long. It stops at the first error.
func (b bitmap) runs(max uint64, fn func(first, count uint64) error) error {
	var (
		start uint64
		n     uint64
	)
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
			tz := uint64(bits.TrailingZeros64(w))
			page := base + tz
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
