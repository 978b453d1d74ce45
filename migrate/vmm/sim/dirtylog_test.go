package sim

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/pagebits"
)

// No write is lost to a harvest racing with it: pages marked dirty by
// concurrent writers, harvested meanwhile over whole memory and over
// ranges that split words, all turn up in exactly the harvests' union —
// the summary of non-empty words never hides a set bit.
func TestDirtyLogLosesNoWriteToConcurrentHarvests(t *testing.T) {
	const pages = 64*64*3 + 77 // three summary words and a ragged end
	vm := newTestVM(t, WithMemory(pages*vmm.PageSize), WithDirtyRate(0))
	m := vm.mem
	const writers, writes = 4, 20000
	written := make([]pagebits.Bitmap, writers)
	var wg sync.WaitGroup
	for i := range writers {
		written[i] = pagebits.New(pages)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for range writes {
				p := r.Uint64N(pages)
				written[i].Set(p)
				m.markDirty(p/64, 1<<(p%64))
			}
		}()
	}
	harvested := pagebits.New(pages)
	take := func(first, count uint64) {
		b := pagebits.New(count)
		if err := vm.TakeDirty(first, count, b); err != nil {
			t.Error(err)
			return
		}
		for i := range count {
			if b.Get(i) {
				harvested.Set(first + i)
			}
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	r := rand.New(rand.NewPCG(99, 1))
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		if r.IntN(2) == 0 {
			take(0, pages)
		} else {
			first := r.Uint64N(pages)
			take(first, 1+r.Uint64N(pages-first))
		}
	}
	take(0, pages) // what the last writes left
	want := pagebits.New(pages)
	for _, w := range written {
		want.Or(w)
	}
	for p := range uint64(pages) {
		if want.Get(p) != harvested.Get(p) {
			t.Fatalf("page %d: written %v, harvested %v", p, want.Get(p), harvested.Get(p))
		}
	}
	// And the log is empty now, summary included.
	if n, _ := vm.DirtyCount(); n != 0 {
		t.Errorf("%d pages still dirty after the last harvest", n)
	}
}
