package sim_test

import (
	"errors"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
)

// FuzzImportDevices feeds arbitrary state to each device through the
// public ImportDevices: it must never panic, and a refusal must say why
// with one of the vmm sentinels.
func FuzzImportDevices(f *testing.F) {
	b, err := sim.New(sim.WithMemory(1<<20), sim.WithDirtyRate(0))
	if err != nil {
		f.Fatal(err)
	}
	src, err := b.NewVM(vmm.Spec{})
	if err != nil {
		f.Fatal(err)
	}
	defer src.Destroy()
	if err := src.Boot(f.Context()); err != nil {
		f.Fatal(err)
	}
	if err := src.Pause(f.Context()); err != nil {
		f.Fatal(err)
	}
	states, err := src.ExportDevices(f.Context())
	if err != nil {
		f.Fatal(err)
	}
	for i, s := range states {
		f.Add(uint8(i), s.Version, s.Data)
	}
	vm, err := b.NewVM(vmm.Spec{})
	if err != nil {
		f.Fatal(err)
	}
	defer vm.Destroy()
	f.Fuzz(func(t *testing.T, device uint8, version uint32, data []byte) {
		s := states[int(device)%len(states)]
		s.Version, s.Data = version, data
		err := vm.ImportDevices(t.Context(), []vmm.DeviceState{s})
		if err != nil && !errors.Is(err, vmm.ErrDeviceData) && !errors.Is(err, vmm.ErrDeviceVersion) {
			t.Fatalf("refusal without a sentinel: %v", err)
		}
		if _, err := vm.ExportDevices(t.Context()); err != nil {
			t.Fatalf("export after import: %v", err)
		}
	})
}
