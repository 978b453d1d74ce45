package migrate

import (
	"bytes"
	"context"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// copyOnly hides a VM's PageVisitor, so the RAM push reads it the way it
// reads a backend that cannot show pages in place.
type copyOnly struct{ vmm.VM }

// TestReadRun reads runs of a guest whose pages are zero, full, or zero
// but for one byte at either end, in place and by copy: both must find
// the same zero pages and the same data.
func TestReadRun(t *testing.T) {
	const pages = 64
	backend, err := sim.New(sim.WithMemory(pages*vmm.PageSize), sim.WithDirtyRate(0))
	if err != nil {
		t.Fatal(err)
	}
	vm, err := backend.NewVM(backend.DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, pages*vmm.PageSize)
	wantZero := make([]bool, pages)
	for p := range pages {
		page := mem[p*vmm.PageSize : (p+1)*vmm.PageSize]
		switch p % 4 {
		case 0:
			wantZero[p] = true
		case 1:
			for i := range page {
				page[i] = byte(p + i)
			}
		case 2:
			page[0] = 1
		case 3:
			page[vmm.PageSize-1] = 1
		}
	}
	if err := vm.WritePages(0, mem); err != nil {
		t.Fatal(err)
	}
	s := &side{cfg: Config{}.withDefaults(), role: schema.RoleSource, clock: vmm.SystemClock(), result: &model.Side{}, ctx: context.Background()}
	for _, tc := range []struct {
		name string
		vm   vmm.VM
	}{{"in place", vm}, {"by copy", copyOnly{vm}}} {
		for _, run := range []struct{ first, count uint64 }{{0, pages}, {5, 1}, {7, 30}, {63, 1}} {
			r := newRAMSender(s, tc.vm)
			if (r.visitor != nil) != (tc.name == "in place") {
				t.Fatalf("%s: visitor %v", tc.name, r.visitor)
			}
			data := r.buf[:run.count*vmm.PageSize]
			if err := r.readRun(run.first, data); err != nil {
				t.Fatalf("%s: readRun(%d, %d pages): %v", tc.name, run.first, run.count, err)
			}
			for i := range run.count {
				p := run.first + i
				if r.isZero[i] != wantZero[p] {
					t.Errorf("%s: run %d+%d: page %d zero = %v, want %v", tc.name, run.first, run.count, p, r.isZero[i], wantZero[p])
				}
				want := mem[p*vmm.PageSize : (p+1)*vmm.PageSize]
				if got := data[i*vmm.PageSize : (i+1)*vmm.PageSize]; !wantZero[p] && !bytes.Equal(got, want) {
					t.Errorf("%s: run %d+%d: page %d read differs from guest memory", tc.name, run.first, run.count, p)
				}
			}
		}
	}
}
