//go:build linux && amd64

package kvm_test

import (
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm/kvm"
	"github.com/migtrace/migtrace/migrate/vmm/vmmtest"
)

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		opts []kvm.Option
	}{
		{"dirtying guest", []kvm.Option{kvm.WithMemory(4 << 20), kvm.WithDirtyRate(16 << 20)}},
		{"fast dirtying guest", []kvm.Option{kvm.WithMemory(8 << 20), kvm.WithDirtyRate(256 << 20)}},
		// An idle guest still stores TSC samples, so it writes memory.
		{"idle guest", []kvm.Option{kvm.WithMemory(2 << 20), kvm.WithDirtyRate(0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, tc.opts...)
			vmmtest.Run(t, vmmtest.Config{Backend: b, Spec: b.DefaultSpec(), GuestWrites: true})
		})
	}
}
