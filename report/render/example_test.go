package render_test

import (
	"os"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
)

func ExampleAdjustments() {
	m := reporttest.SeedDestination()
	_ = render.Adjustments(os.Stdout, []model.Side{m}, render.FormatDTrace)
	// Output:
	// GUEST FREQ (Hz)        UPTIME (usec)    TOTAL TIME (usec)
	//      2649958945            879497608                  148
	//
	// EVENT           DURATION (usec)            GUEST TSC          BOOT HRTIME
	// Migration                   107        2330632597459       17148534696948
	// [adjustment]                                  285087          -9235619709
	// Propolis                     22        2330632882546       17139299077239
	// [adjustment]                                   84400                    0
	// Kernel                       18        2330632966946       17139299077239
}

func ExamplePhases() {
	m := reporttest.SeedSource()
	_ = render.Phases(os.Stdout, []model.Side{m}, render.FormatDTrace)
	// Output:
	// PHASE                           TIME ELAPSED (usec)
	// Sync                                            121
	// RamPushPrePause                             9402847
	// RamPushPostPause                             202005
	// TimeData                                        156
	// DeviceState                                   61375
	// RamPull                                       57509
	// ServerState                                   64561
	// Finish                                        55346
	// TOTAL                                       9843924
}

func ExampleCheck() {
	results := report.Check([]model.Side{reporttest.SeedSource(), reporttest.SeedDestination()}, report.Options{})
	_ = render.Check(os.Stdout, results, render.FormatText)
	// Output:
	// OK migration 5eed0359-0000-4000-8000-000000000359: 31 rules verified on both sides; not verified: phase-set (source) [no Pause span, and no protocol version recorded to say this side's protocol has one (propolis's seed capture has none)]; kernel-tsc (destination) [not recorded: TimeData event migration.time_data.stage (kernel): migration.time.vmm_latency_ns, migration.time.hrtime]; continuity: TSC monotonic over 16 samples, error 1.20 µs, memory checksum ok, device state ok
}
