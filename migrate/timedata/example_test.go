package timedata_test

import (
	"fmt"

	"github.com/migtrace/migtrace/migrate/timedata"
)

// The worked example from propolis PR #359: a guest at 2.649958945 GHz
// migrated in 107.582 µs of wall-clock time.
func ExampleAdjust() {
	src := timedata.Data{
		GuestFreq:  2649958945,
		GuestTSC:   2330632597459,
		Hrtime:     18028032305249,
		Wallclock:  timedata.Wallclock{Sec: 1683850713, Nsec: 581965192},
		BootHrtime: 17148534696948,
	}
	dstWallclock, _ := timedata.ParseWallclock("1683850713.582072774")

	dst, adj, err := timedata.Adjust(src, 18018796793122, dstWallclock)
	if err != nil {
		fmt.Println("adjusting:", err)
		return
	}
	fmt.Println("migration delta ns:", adj.MigrateDelta)
	fmt.Printf("guest TSC: %d + %d = %d\n", src.GuestTSC, adj.GuestTSCDelta, dst.GuestTSC)
	fmt.Printf("boot_hrtime: %d -> %d (%+d)\n", src.BootHrtime, dst.BootHrtime, adj.BootHrtimeDelta)
	// Output:
	// migration delta ns: 107582
	// guest TSC: 2330632597459 + 285087 = 2330632882546
	// boot_hrtime: 17148534696948 -> 17139299077239 (-9235619709)
}
