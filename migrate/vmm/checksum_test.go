package vmm_test

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
)

func newFilledVM(tb testing.TB, memory uint64) vmm.VM {
	tb.Helper()
	b, err := sim.New(sim.WithMemory(memory), sim.WithDirtyRate(0))
	if err != nil {
		tb.Fatal(err)
	}
	vm, err := b.New(vmm.Spec{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = vm.Destroy() })
	if err := vm.WritePages(0, fill(memory)); err != nil {
		tb.Fatal(err)
	}
	return vm
}

func fill(n uint64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>12)
	}
	return b
}

// referenceChecksum restates ChecksumPages' documented algorithm word by
// word, to pin the fast lane-parallel code to its definition.
func referenceChecksum(mem []byte) uint64 {
	var lanes [4]uint64
	for i := range lanes {
		lanes[i] = 0xcbf29ce484222325 + uint64(i)
	}
	for w := 0; w*8 < len(mem); w++ {
		l := &lanes[w%4]
		*l ^= binary.LittleEndian.Uint64(mem[w*8:])
		*l *= 0x100000001b3
	}
	x := uint64(len(mem) / vmm.PageSize)
	for i, l := range lanes {
		z := x ^ bits.RotateLeft64(l, 16*i)
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		x = z ^ (z >> 31)
	}
	return x
}

func TestChecksum(t *testing.T) {
	const memory = 2 << 20
	vm := newFilledVM(t, memory)
	sum, err := vmm.Checksum(vm)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceChecksum(fill(memory)); sum != want {
		t.Fatalf("Checksum = %#x, reference %#x", sum, want)
	}
	// The value is part of the contract (source and destination compare
	// it across processes): a change here breaks mixed-version checks.
	const golden = 0x529dd76e5c4a25ab
	if sum != golden {
		t.Errorf("Checksum of the fixture = %#x, was %#x", sum, uint64(golden))
	}

	twin := newFilledVM(t, memory)
	if got, _ := vmm.Checksum(twin); got != sum {
		t.Errorf("equal memories: %#x vs %#x", got, sum)
	}
	page := make([]byte, vmm.PageSize)
	if err := twin.ReadPages(100, page); err != nil {
		t.Fatal(err)
	}
	page[4095] ^= 0x80
	if err := twin.WritePages(100, page); err != nil {
		t.Fatal(err)
	}
	if got, _ := vmm.Checksum(twin); got == sum {
		t.Errorf("one flipped bit left the checksum at %#x", got)
	}

	pages := uint64(memory / vmm.PageSize)
	sub, err := vmm.ChecksumPages(vm, 3, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := referenceChecksum(fill(memory)[3*vmm.PageSize : 10*vmm.PageSize]); sub != want {
		t.Errorf("ChecksumPages(3, 7) = %#x, reference %#x", sub, want)
	}
	if _, err := vmm.ChecksumPages(vm, pages-1, 2); !errors.Is(err, vmm.ErrOutOfRange) {
		t.Errorf("range past the end: %v", err)
	}
	if err := vm.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := vmm.Checksum(vm); !errors.Is(err, vmm.ErrDestroyed) {
		t.Errorf("destroyed VM: %v", err)
	}
}

// BenchmarkChecksum hashes a 256 MiB guest; the ReadPages case is the same
// sweep without hashing, the baseline for the hash's share.
func BenchmarkChecksum(b *testing.B) {
	const memory = 256 << 20
	vm := newFilledVM(b, memory)
	b.Run("Checksum", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(memory)
		for range b.N {
			if _, err := vmm.Checksum(vm); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ReadPages", func(b *testing.B) {
		buf := make([]byte, 1<<20)
		b.ReportAllocs()
		b.SetBytes(memory)
		b.ResetTimer()
		for range b.N {
			for first := uint64(0); first < memory/vmm.PageSize; first += uint64(len(buf) / vmm.PageSize) {
				if err := vm.ReadPages(first, buf); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
