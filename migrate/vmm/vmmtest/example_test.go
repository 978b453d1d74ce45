package vmmtest_test

import (
	"context"
	"fmt"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/vmm/vmmtest"
)

// Migrate a guest up 5 days on a 30-day-old host to a 100-day-old host,
// the move taking 1 s of wall-clock time: the guest's uptime grows by that
// second, boot_hrtime is rebased onto the new host's clock, and memory
// arrives intact.
func ExampleMigrate() {
	ctx := context.Background()
	const day = 24 * 3600 * 1_000_000_000
	srcClock := vmmtest.NewManualClock(30*day, timedata.Wallclock{Sec: 1_700_000_000})
	dstClock := vmmtest.NewManualClock(100*day, timedata.Wallclock{Sec: 1_700_432_001})

	srcHost, _ := sim.New(sim.WithMemory(1<<20), sim.WithClock(srcClock))
	dstHost, _ := sim.New(sim.WithMemory(1<<20), sim.WithClock(dstClock))
	src, _ := srcHost.New(vmm.Spec{})
	defer src.Destroy()
	_ = src.Boot(ctx)
	_ = src.Pause(ctx)
	srcClock.Advance(5 * day)

	dst, _ := dstHost.New(src.Spec())
	defer dst.Destroy()
	res, err := vmmtest.Migrate(ctx, src, dst, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	srcSum, _ := vmm.Checksum(src)
	dstSum, _ := vmm.Checksum(dst)
	up, _ := res.Adjusted.GuestUptime()
	fmt.Println("guest uptime after the move, s:", up/1e9)
	fmt.Println("migration delta, s:", res.Adjustments.MigrateDelta/1e9)
	fmt.Println("boot_hrtime on the destination, s:", res.Adjusted.BootHrtime/1e9)
	fmt.Println("memory equal:", srcSum == dstSum)
	// Output:
	// guest uptime after the move, s: 432001
	// migration delta, s: 1
	// boot_hrtime on the destination, s: 8207999
	// memory equal: true
}
