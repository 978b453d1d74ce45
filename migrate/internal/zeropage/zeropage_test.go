package zeropage

import (
	"bytes"
	"testing"
	"time"
)

// reference is the obvious definition the fast versions must agree with.
func reference(p []byte) bool { return bytes.Count(p, []byte{0}) == len(p) }

// implementations are every version this build can run; the vector loop
// only where the CPU has it.
func implementations() map[string]func([]byte) bool {
	impls := map[string]func([]byte) bool{"IsZero": IsZero, "generic": isZeroGeneric}
	if useAsm {
		impls["asm"] = func(p []byte) bool {
			n := len(p) &^ (blockSize - 1)
			if n == 0 {
				return isZeroGeneric(p)
			}
			return isZeroAsm(p[:n]) && isZeroGeneric(p[n:])
		}
	}
	return impls
}

func TestIsZero(t *testing.T) {
	page := func(set ...int) []byte {
		p := make([]byte, 4096)
		for _, i := range set {
			p[i] = 0x80
		}
		return p
	}
	tests := []struct {
		name string
		p    []byte
		want bool
	}{
		{"empty", nil, true},
		{"one zero byte", []byte{0}, true},
		{"one set byte", []byte{1}, false},
		{"zero page", page(), true},
		{"first byte", page(0), false},
		{"last byte", page(4095), false},
		{"last byte of a vector step", page(255), false},
		{"first byte of the second step", page(256), false},
		{"inside the first word", page(7), false},
		{"byte 8, past the first-word check", page(8), false},
		{"middle", page(2048), false},
		{"tail past the vector loop", append(page(), 0, 0, 0, 1), false},
		{"zero tail past the vector loop", append(page(), 0, 0, 0), true},
		{"odd length, zero", make([]byte, 999), true},
		{"two pages, set in the second", append(page(), page(4000)...), false},
	}
	for name, f := range implementations() {
		for _, tc := range tests {
			if got := f(tc.p); got != tc.want {
				t.Errorf("%s(%s) = %v, want %v", name, tc.name, got, tc.want)
			}
		}
	}
}

// TestEveryBit sets each bit of a page in turn: no position, alignment or
// bit may go unseen by any version.
func TestEveryBit(t *testing.T) {
	p := make([]byte, 4096+3)
	for off := range 3 { // misaligned starts too
		q := p[off : off+4096]
		for i := range q {
			for bit := range 8 {
				q[i] = 1 << bit
				for name, f := range implementations() {
					if f(q) {
						t.Fatalf("%s: offset %d, byte %d bit %d set, reported zero", name, off, i, bit)
					}
				}
				q[i] = 0
			}
		}
		for name, f := range implementations() {
			if !f(q) {
				t.Fatalf("%s: offset %d: zero page reported non-zero", name, off)
			}
		}
	}
}

// FuzzIsZero checks every version against the reference on arbitrary
// input, placed in a zero buffer so that most inputs are nearly zero.
func FuzzIsZero(f *testing.F) {
	f.Add([]byte{}, uint16(0), uint16(0))
	f.Add([]byte{1}, uint16(4095), uint16(4096))
	f.Add([]byte{0, 0, 0x40}, uint16(300), uint16(1000))
	f.Fuzz(func(t *testing.T, data []byte, at, size uint16) {
		n := int(size)%8192 + len(data)
		buf := make([]byte, n)
		if len(data) > 0 {
			copy(buf[int(at)%(n-len(data)+1):], data)
		}
		want := reference(buf)
		for name, fn := range implementations() {
			if got := fn(buf); got != want {
				t.Fatalf("%s(%d bytes, %q at %d) = %v, want %v", name, n, data, at, got, want)
			}
		}
	})
}

var zero4K [4096]byte

var sink bool

// BenchmarkIsZero times each version over zero pages, which it must read
// whole, against two baselines, taking turns within every iteration so
// that load on the machine falls on all of them alike: bytes.Equal with a
// zero page (what the RAM push used before) and clearing the same pages
// (memclr, a plain pass over the bytes). "hot" is one page in cache;
// "memory" walks 256 MiB, more than any cache. The ratios are the speed of
// IsZero over each baseline's.
func BenchmarkIsZero(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
		reps  int // passes per timing, so that a hot timing is not all clock reads
	}{{"hot", 4096, 4096}, {"memory", 256 << 20, 1}} {
		b.Run(size.name, func(b *testing.B) {
			buf := make([]byte, size.bytes)
			clear(buf) // resident, not the kernel's shared zero page
			cases := []struct {
				name string
				fn   func(p []byte)
			}{
				{"IsZero", func(p []byte) { sink = IsZero(p) }},
				{"generic", func(p []byte) { sink = isZeroGeneric(p) }},
				{"bytes.Equal", func(p []byte) { sink = bytes.Equal(p, zero4K[:]) }},
				{"memclr", func(p []byte) { clear(p) }},
			}
			elapsed := make([]time.Duration, len(cases))
			b.ReportAllocs()
			for b.Loop() {
				for i, c := range cases {
					start := time.Now()
					for range size.reps {
						for off := 0; off < len(buf); off += 4096 {
							c.fn(buf[off : off+4096])
						}
					}
					elapsed[i] += time.Since(start)
				}
			}
			gbps := func(i int) float64 {
				return float64(b.N) * float64(len(buf)*size.reps) / elapsed[i].Seconds() / 1e9
			}
			for i, c := range cases {
				b.ReportMetric(gbps(i), c.name+"-GB/s")
			}
			b.ReportMetric(gbps(0)/gbps(2), "IsZero/bytes.Equal")
			b.ReportMetric(gbps(0)/gbps(3), "IsZero/memclr")
		})
	}
}
