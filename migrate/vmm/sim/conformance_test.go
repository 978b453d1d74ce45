package sim_test

import (
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/vmm/vmmtest"
)

func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		opts []sim.Option
	}{
		{"one vcpu", []sim.Option{sim.WithMemory(4 << 20), sim.WithDirtyRate(16 << 20)}},
		{"four vcpus fast", []sim.Option{sim.WithMemory(8 << 20), sim.WithVCPUs(4), sim.WithDirtyRate(256 << 20)}},
		{"idle guest", []sim.Option{sim.WithMemory(2 << 20), sim.WithDirtyRate(0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := sim.New(tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			// Even an idle guest samples its TSC into memory, so it writes.
			vmmtest.Run(t, vmmtest.Config{Backend: b, Spec: b.DefaultSpec(), GuestWrites: true})
		})
	}
}
