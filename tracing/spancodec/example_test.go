package spancodec_test

import (
	"fmt"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// The attributes of the Migration stage event, for the seed migration of
// propolis PR #359.
func ExampleStageAttributes() {
	v := model.StageValues{
		Present: true, GuestFreq: 2649958945, GuestTSC: 2330632597459,
		BootHrtime: 17148534696948, Hrtime: 18028032305249, Wallclock: "1683850713.581965192",
		DurationNs: 107582, GuestUptimeNs: 879497608301, MigrateDeltaNs: 107582,
	}
	for _, kv := range spancodec.StageAttributes(schema.StageMigration, v) {
		fmt.Printf("%s = %s\n", kv.Key, kv.Value.Emit())
	}
	// Output:
	// migration.time.stage = migration
	// migration.time.guest_freq_hz = 2649958945
	// migration.time.guest_tsc = 2330632597459
	// migration.time.boot_hrtime = 17148534696948
	// migration.time.hrtime = 18028032305249
	// migration.time.wallclock = 1683850713.581965192
	// migration.time.duration_ns = 107582
	// migration.time.guest_tsc_delta = 0
	// migration.time.boot_hrtime_delta = 0
	// migration.time.guest_uptime_ns = 879497608301
	// migration.time.migrate_delta_ns = 107582
	// migration.time.migrate_delta_negative = false
}
