package sim_test

import (
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
)

func benchVM(b *testing.B, memory uint64) *sim.VM {
	b.Helper()
	backend, err := sim.New(sim.WithMemory(memory), sim.WithDirtyRate(0))
	if err != nil {
		b.Fatal(err)
	}
	vm, err := backend.NewVM(vmm.Spec{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = vm.Destroy() })
	return vm
}

// BenchmarkTakeDirty scans and clears the dirty log of 1 GiB of guest
// memory; MB/s is guest memory covered per second.
func BenchmarkTakeDirty(b *testing.B) {
	const memory = 1 << 30
	vm := benchVM(b, memory)
	pages := uint64(memory / vmm.PageSize)
	out := make([]uint64, pages/64)
	for _, tc := range []struct {
		name  string
		every uint64 // one dirty page in every; 0 for a clean log
	}{{"clean", 0}, {"1pct", 100}, {"all", 1}} {
		fill := make([]uint64, pages/64)
		for p := uint64(0); tc.every > 0 && p < pages; p += tc.every {
			fill[p/64] |= 1 << (p % 64)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(memory)
			for range b.N {
				if tc.every > 0 {
					b.StopTimer()
					if err := vm.RestoreDirty(0, pages, fill); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if err := vm.TakeDirty(0, pages, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCopyOut copies guest memory out 1 MiB at a time, sweeping a
// 256 MiB guest so the copy runs at memory speed, not cache speed. The
// memmove cases do the same over a plain slice, in one call and page by
// page (ReadPages' own pattern, without its locks): the ratios are ReadPages'
// overhead. "running" copies while idle vCPUs sample their TSC.
func BenchmarkCopyOut(b *testing.B) {
	const memory, chunk = 256 << 20, 512 << 10
	plain := make([]byte, memory)
	for i := range plain {
		plain[i] = byte(i>>12) | 1
	}
	dst := make([]byte, chunk)
	b.Run("memmove", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(chunk)
		off := 0
		for range b.N {
			copy(dst, plain[off:off+chunk])
			off = (off + chunk) % memory
		}
	})

	b.Run("memmove/by-page", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(chunk)
		off := 0
		for range b.N {
			for p := 0; p < chunk; p += vmm.PageSize {
				copy(dst[p:p+vmm.PageSize], plain[off+p:])
			}
			off = (off + chunk) % memory
		}
	})

	vm := benchVM(b, memory)
	if err := vm.WritePages(0, plain); err != nil {
		b.Fatal(err)
	}
	readPages := func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(chunk)
		var first uint64
		for range b.N {
			if err := vm.ReadPages(first, dst); err != nil {
				b.Fatal(err)
			}
			first = (first + chunk/vmm.PageSize) % (memory / vmm.PageSize)
		}
	}
	b.Run("ReadPages/paused", readPages)
	if err := vm.Resume(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Run("ReadPages/running", readPages)
}

// BenchmarkCopyOutDirtying is ReadPages/running against a guest writing
// 256 MiB/s, so copies contend with guest writes for the page locks.
func BenchmarkCopyOutDirtying(b *testing.B) {
	const memory, chunk = 256 << 20, 512 << 10
	backend, err := sim.New(sim.WithMemory(memory), sim.WithDirtyRate(256<<20))
	if err != nil {
		b.Fatal(err)
	}
	vm, err := backend.NewVM(vmm.Spec{})
	if err != nil {
		b.Fatal(err)
	}
	defer vm.Destroy()
	if err := vm.Boot(b.Context()); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, chunk)
	b.ResetTimer()
	b.ReportAllocs()
	b.SetBytes(chunk)
	var first uint64
	for range b.N {
		if err := vm.ReadPages(first, dst); err != nil {
			b.Fatal(err)
		}
		first = (first + chunk/vmm.PageSize) % (memory / vmm.PageSize)
	}
}
