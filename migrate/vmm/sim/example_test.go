package sim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/vmm/vmmtest"
)

// A 16 MiB, two-vCPU guest dirtying 8 MiB/s runs for a moment, is paused,
// and its memory and TSC ring are checked.
func ExampleNew() {
	backend, err := sim.New(sim.WithMemory(16<<20), sim.WithVCPUs(2), sim.WithDirtyRate(8<<20))
	if err != nil {
		fmt.Println(err)
		return
	}
	vm, err := backend.New(backend.DefaultSpec())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer vm.Destroy()

	ctx := context.Background()
	if err := vm.Boot(ctx); err != nil {
		fmt.Println(err)
		return
	}
	time.Sleep(20 * time.Millisecond)
	if err := vm.Pause(ctx); err != nil {
		fmt.Println(err)
		return
	}
	continuity, err := vm.GuestContinuity()
	if err != nil {
		fmt.Println(err)
		return
	}
	report, err := sim.VerifyMemory(vm)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("state:", vm.State())
	fmt.Println("TSC monotonic:", continuity.Monotonic)
	fmt.Println("workload pages:", report.Pages, "all consistent:", report.Stamped+report.Zero == report.Pages)
	// Output:
	// state: paused
	// TSC monotonic: true
	// workload pages: 4080 all consistent: true
}

// WriteTimeData compensates, as bhyve does, for the time between the
// caller's snapshot and the VMM's receipt.
func ExampleVM_WriteTimeData() {
	clock := vmmtest.NewManualClock(1_000_000_000, timedata.Wallclock{Sec: 1_700_000_000})
	backend, _ := sim.New(sim.WithMemory(1<<20), sim.WithClock(clock))
	vm, _ := backend.NewVM(backend.DefaultSpec())
	defer vm.Destroy()

	snapshot, _ := clock.Now()
	clock.Advance(40_000) // 40 µs pass before the write reaches the VMM
	w, err := vm.WriteTimeData(context.Background(), timedata.Data{
		GuestFreq:  2_649_958_945,
		GuestTSC:   2_330_632_882_546,
		Hrtime:     snapshot,
		BootHrtime: 500_000_000,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("latency ns:", w.Latency)
	fmt.Println("TSC correction ticks:", w.TSCCorrection)
	fmt.Println("guest TSC applied:", w.Applied.GuestTSC)
	fmt.Println("boot_hrtime:", w.Applied.BootHrtime)
	// Output:
	// latency ns: 40000
	// TSC correction ticks: 105998
	// guest TSC applied: 2330632988544
	// boot_hrtime: 500000000
}
