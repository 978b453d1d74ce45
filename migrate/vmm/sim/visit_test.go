package sim

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// VisitPages shows each page in place with the bytes ReadPages copies out,
// and refuses a range outside guest memory.
func TestVisitPagesMatchesReadPages(t *testing.T) {
	vm := newTestVM(t, WithMemory(4<<20), WithDirtyRate(1<<20))
	ctx := context.Background()
	if err := vm.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	if err := vm.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	pages := vm.Spec().Pages()
	want := make([]byte, pages*vmm.PageSize)
	if err := vm.ReadPages(0, want); err != nil {
		t.Fatal(err)
	}
	seen := uint64(0)
	err := vm.VisitPages(0, pages, func(p uint64, data []byte) {
		if p != seen || !bytes.Equal(data, want[p*vmm.PageSize:(p+1)*vmm.PageSize]) {
			t.Fatalf("page %d (visit %d) differs from ReadPages", p, seen)
		}
		seen++
	})
	if err != nil || seen != pages {
		t.Fatalf("visited %d of %d pages: %v", seen, pages, err)
	}
	if err := vm.VisitPages(pages-1, 2, func(uint64, []byte) {}); !errors.Is(err, vmm.ErrOutOfRange) {
		t.Errorf("range past the end: %v, want ErrOutOfRange", err)
	}
}
