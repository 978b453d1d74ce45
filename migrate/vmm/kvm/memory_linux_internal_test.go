//go:build linux && amd64

package kvm

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// More guest memory than the process has address space for is an error
// naming capacity, not a crash: 1 PiB is past x86-64's 128 TiB of user
// address space.
func TestMapGuestMemoryBeyondAddressSpace(t *testing.T) {
	mem, err := mapGuestMemory(1 << 50)
	if err == nil {
		_ = unix.Munmap(mem)
		t.Fatal("mapped 1 PiB of guest memory")
	}
	if !errors.Is(err, vmm.ErrCapacity) {
		t.Errorf("error %v, want vmm.ErrCapacity", err)
	}
	mem, err = mapGuestMemory(2 << 20)
	if err != nil || len(mem) != 2<<20 {
		t.Fatalf("mapping 2 MiB: %d bytes, %v", len(mem), err)
	}
	if err := unix.Munmap(mem); err != nil {
		t.Error(err)
	}
}
