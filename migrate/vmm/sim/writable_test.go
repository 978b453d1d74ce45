package sim

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// WritablePages hands out guest memory only while no vCPU has run, and
// what is written through it is what ReadPages reads and the resumed
// guest runs on.
func TestWritablePages(t *testing.T) {
	vm := newTestVM(t, WithMemory(4<<20), WithDirtyRate(0))
	pages := vm.Spec().Pages()
	for _, tc := range []struct {
		name         string
		first, count uint64
		want         error
	}{
		{"one page", 20, 1, nil},
		{"the last pages", pages - 3, 3, nil},
		{"past the end", pages - 1, 2, vmm.ErrOutOfRange},
		{"beyond memory", pages, 1, vmm.ErrOutOfRange},
	} {
		buf, err := vm.WritablePages(tc.first, tc.count)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: err %v, want %v", tc.name, err, tc.want)
		}
		if err != nil {
			continue
		}
		if uint64(len(buf)) != tc.count*vmm.PageSize || uint64(cap(buf)) != tc.count*vmm.PageSize {
			t.Fatalf("%s: %d bytes (cap %d) for %d pages", tc.name, len(buf), cap(buf), tc.count)
		}
		for i := range buf {
			buf[i] = byte(i + int(tc.first))
		}
		got := make([]byte, len(buf))
		if err := vm.ReadPages(tc.first, got); err != nil || !bytes.Equal(got, buf) {
			t.Fatalf("%s: ReadPages after the write: %v, equal %v", tc.name, err, bytes.Equal(got, buf))
		}
	}
	ctx := context.Background()
	if err := vm.Boot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.WritablePages(20, 1); !errors.Is(err, vmm.ErrInvalidState) {
		t.Errorf("running VM: err %v, want ErrInvalidState", err)
	}
	if err := vm.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.WritablePages(20, 1); !errors.Is(err, vmm.ErrInvalidState) {
		t.Errorf("paused VM that ran: err %v, want ErrInvalidState", err)
	}
}
