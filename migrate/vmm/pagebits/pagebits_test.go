package pagebits

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// reference is a bit-per-bool model of a bitmap.
type reference []bool

func (r reference) bitmap() Bitmap {
	b := New(uint64(len(r)))
	for i, v := range r {
		if v {
			b[i/64] |= 1 << (i % 64)
		}
	}
	return b
}

func TestMoveRunsAtAnyOffset(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const size = 64 * 5
	for range 2000 {
		ref := make(reference, size)
		for i := range ref {
			ref[i] = rng.IntN(2) == 0
		}
		n := 1 + rng.Uint64N(64)
		pos := rng.Uint64N(size - n + 1)
		b := ref.bitmap()
		var want uint64
		for i := range n {
			if ref[pos+i] {
				want |= 1 << i
			}
		}
		if got := Extract(b, pos, n); got != want {
			t.Fatalf("Extract(%d, %d) = %#x, want %#x", pos, n, got, want)
		}
		if got := Take(b, pos, n); got != want {
			t.Fatalf("Take(%d, %d) = %#x, want %#x", pos, n, got, want)
		}
		for i := range uint64(size) {
			inRun := i >= pos && i < pos+n
			if got := b.Get(i); got != (ref[i] && !inRun) {
				t.Fatalf("after Take(%d, %d): bit %d = %v", pos, n, i, got)
			}
		}
		Put(b, pos, n, want)
		if !slices.Equal(b, ref.bitmap()) {
			t.Fatalf("Put(%d, %d) did not restore the bitmap", pos, n)
		}
	}
}

func TestSetRangeFillCountRuns(t *testing.T) {
	b := New(200)
	b.SetRange(3, 70)
	b.SetRange(130, 1)
	b.Set(199)
	if got := b.Count(); got != 72 {
		t.Errorf("Count = %d, want 72", got)
	}
	var runs [][2]uint64
	_ = b.Runs(50, func(first, count uint64) error {
		runs = append(runs, [2]uint64{first, count})
		return nil
	})
	want := [][2]uint64{{3, 50}, {53, 20}, {130, 1}, {199, 1}}
	if !slices.Equal(runs, want) {
		t.Errorf("Runs = %v, want %v", runs, want)
	}
	f := New(130)
	f.Fill(130)
	if f.Count() != 130 || f[2] != 3 {
		t.Errorf("Fill(130): count %d, last word %#x", f.Count(), f[2])
	}
	f.AndNot(b)
	if f.Get(3) || !f.Get(2) || f.Count() != 130-70 {
		t.Errorf("AndNot: count %d", f.Count())
	}
}

func TestPutTakeTable(t *testing.T) {
	for _, pos := range []uint64{0, 1, 37, 63, 64, 100} {
		for _, n := range []uint64{1, 5, 63, 64} {
			b := make([]uint64, 4)
			w := uint64(0xdead_beef_cafe_f00d)
			if n < 64 {
				w &= 1<<n - 1
			}
			Put(b, pos, n, w)
			for i := range uint64(256) {
				want := i >= pos && i < pos+n && w>>(i-pos)&1 == 1
				if got := b[i/64]>>(i%64)&1 == 1; got != want {
					t.Fatalf("Put(pos %d, n %d): bit %d = %v", pos, n, i, got)
				}
			}
			if got := Take(b, pos, n); got != w {
				t.Errorf("Take(pos %d, n %d) = %#x, want %#x", pos, n, got, w)
			}
			if b[0]|b[1]|b[2]|b[3] != 0 {
				t.Errorf("Take(pos %d, n %d) left bits set: %x", pos, n, b)
			}
		}
	}
}

// TestClearRuns checks ClearRuns against the runs of the inverted bitmap,
// on bitmaps that are empty, full, sparse, dense and random, at lengths
// that end inside a word, with limits that split runs.
func TestClearRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	type run struct{ first, count uint64 }
	collect := func(each func(fn func(first, count uint64) error) error) []run {
		var out []run
		_ = each(func(first, count uint64) error {
			out = append(out, run{first, count})
			return nil
		})
		return out
	}
	for _, tc := range []struct {
		name string
		n    uint64
		set  func(i uint64) bool
	}{
		{"empty", 300, func(uint64) bool { return false }},
		{"full", 300, func(uint64) bool { return true }},
		{"one clear page", 1000, func(i uint64) bool { return i != 517 }},
		{"every third set", 777, func(i uint64) bool { return i%3 == 0 }},
		{"clear words and a set bit", 640, func(i uint64) bool { return i == 200 }},
		{"random", 4096, func(uint64) bool { return rng.IntN(2) == 0 }},
		{"mostly set", 4096, func(uint64) bool { return rng.IntN(50) != 0 }},
	} {
		b, inv := New(tc.n), New(tc.n)
		for i := range tc.n {
			if tc.set(i) {
				b.Set(i)
			} else {
				inv.Set(i)
			}
		}
		for _, max := range []uint64{1, 7, 64, 100, 1 << 20} {
			got := collect(func(fn func(first, count uint64) error) error { return b.ClearRuns(tc.n, max, fn) })
			want := collect(func(fn func(first, count uint64) error) error { return inv.Runs(max, fn) })
			if !slices.Equal(got, want) {
				t.Errorf("%s, max %d: ClearRuns %v, want %v", tc.name, max, got, want)
			}
		}
	}
}
