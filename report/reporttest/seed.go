package reporttest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// SeedMigrationID is the id the seed's sides carry.
const SeedMigrationID = "5eed0359-0000-4000-8000-000000000359"

// seedStart is the source's wall clock at export in the seed's log.
var seedStart = time.Unix(1683850713, 581965192).UTC()

// SeedPhases are the source's phase begin/end timestamps from the seed's
// verbose live-migration-times.d capture (golden/seed-phases.timestamps).
func SeedPhases() []model.PhaseTiming {
	return []model.PhaseTiming{
		{Phase: schema.PhaseSync, BeginNs: 17437355109672, EndNs: 17437355230924},
		{Phase: schema.PhaseRamPushPrePause, BeginNs: 17437355249524, EndNs: 17446758097054},
		{Phase: schema.PhaseRamPushPostPause, BeginNs: 17446758114444, EndNs: 17446960120090},
		{Phase: schema.PhaseTimeData, BeginNs: 17446960141050, EndNs: 17446960297073},
		{Phase: schema.PhaseDeviceState, BeginNs: 17446960307583, EndNs: 17447021682763},
		{Phase: schema.PhaseRamPull, BeginNs: 17447021689593, EndNs: 17447079199443},
		{Phase: schema.PhaseServerState, BeginNs: 17447079210023, EndNs: 17447143771862},
		{Phase: schema.PhaseFinish, BeginNs: 17447143778262, EndNs: 17447199125099},
	}
}

// SeedSource is the seed's source side: its phases, no RAM counts (the
// seed's capture has no page summary), and the time data it read, which
// the destination's log prints as received. Its capture has no Pause
// phase, and it records no protocol version (see report's phase-set
// rule).
func SeedSource() model.Side {
	return withEnd(model.Side{
		ID: SeedMigrationID, Role: schema.RoleSource, Instance: "propolis-src",
		Peer: "dst:8000", Backend: "sim", MemoryBytes: 1 << 30,
		Result: schema.ResultSuccess, StartTime: seedStart,
		DowntimeNs: 202005646 + 156023,
		Phases:     SeedPhases(),
		TimeRead: &model.TimeRead{GuestFreq: SeedGuestFreq, GuestTSC: SeedSrcGuestTSC,
			BootHrtime: SeedSrcBootHrtime, Hrtime: SeedSrcHrtime, Wallclock: SeedSrcWallclock},
	})
}

// Seed time data (the destination log of propolis PR #359).
const (
	SeedGuestFreq      = 2649958945
	SeedSrcGuestTSC    = 2330632597459
	SeedSrcHrtime      = 18028032305249
	SeedSrcBootHrtime  = 17148534696948
	SeedDstHrtime      = 18018796793122
	SeedMigrateDeltaNs = 107582
	SeedUptimeNs       = SeedSrcHrtime - SeedSrcBootHrtime // 879497608301
	SeedUserTSC        = 2330632882546
	SeedNewBootHrtime  = 17139299077239
	SeedKernelTSC      = 2330632966946
	// Stage durations the D script measured (22 µs and 18 µs); the ns
	// parts are chosen so TOTAL TIME truncates to the capture's 148 µs.
	SeedUserspaceNs = 22500
	SeedKernelNs    = 18300
	// The source's and the destination's wall clocks at the snapshots.
	SeedSrcWallclock = "1683850713.581965192"
	SeedDstWallclock = "1683850713.582072774"
)

// SeedKernelUnrecorded are the kernel stage's attributes the seed does
// not have: the D script reads none of the kernel's hrtime, wall clock or
// latency. None can be made up to fit either: bhyve converts the latency
// through host TSC ticks, and no whole number of ns gives the capture's
// 84400 ticks at SeedGuestFreq (31849 ns gives 84398, 31850 ns 84401),
// so the seed leaves the kernel-tsc rule unverified rather than fake it.
var SeedKernelUnrecorded = []string{schema.AttrHrtime, schema.AttrVMMLatencyNs, schema.AttrWallclock}

// SeedDestination is the seed's destination side: the three time-data
// stages of the worked example, a clock offset within its bound, and a
// clean continuity check.
func SeedDestination() model.Side {
	honoured := true
	contErr := int64(1200)
	m := model.Side{
		ID: SeedMigrationID, Role: schema.RoleDestination, Instance: "propolis-dst",
		Peer: "src:8000", Backend: "sim", MemoryBytes: 1 << 30,
		Result: schema.ResultSuccess, StartTime: seedStart.Add(-time.Millisecond),
		Phases:      SeedPhases(),
		ClockOffset: &model.ClockOffset{OffsetNs: 2100, ErrorNs: 45000, RTTNs: 90000, Samples: 8},
		Blackout:    &model.Blackout{Ns: 330412877, ErrorNs: ptr(int64(45000))},
		Continuity: &model.Continuity{TSCMonotonic: true, TSCSamples: 16, ErrorNs: &contErr,
			TSCOffsetHonoured: &honoured, MemoryChecksumOK: true, DeviceStateMatches: true},
	}
	m.Stages[model.StageIndex(schema.StageMigration)] = model.StageValues{
		Present: true, GuestFreq: SeedGuestFreq, GuestTSC: SeedSrcGuestTSC,
		BootHrtime: SeedSrcBootHrtime, Hrtime: SeedSrcHrtime, Wallclock: SeedSrcWallclock,
		DurationNs: SeedMigrateDeltaNs, GuestUptimeNs: SeedUptimeNs, MigrateDeltaNs: SeedMigrateDeltaNs,
	}
	m.Stages[model.StageIndex(schema.StageUserspace)] = model.StageValues{
		Present: true, GuestFreq: SeedGuestFreq, GuestTSC: SeedUserTSC,
		BootHrtime: SeedNewBootHrtime, Hrtime: SeedDstHrtime, Wallclock: SeedDstWallclock,
		DurationNs: SeedUserspaceNs, GuestTSCDelta: SeedUserTSC - SeedSrcGuestTSC,
		BootHrtimeDelta: SeedNewBootHrtime - SeedSrcBootHrtime,
		GuestUptimeNs:   SeedUptimeNs, MigrateDeltaNs: SeedMigrateDeltaNs,
	}
	m.Stages[model.StageIndex(schema.StageKernel)] = model.StageValues{
		Present: true, GuestFreq: SeedGuestFreq, GuestTSC: SeedKernelTSC,
		BootHrtime: SeedNewBootHrtime,
		DurationNs: SeedKernelNs, GuestTSCDelta: SeedKernelTSC - SeedUserTSC,
		GuestUptimeNs: SeedUptimeNs, MigrateDeltaNs: SeedMigrateDeltaNs,
	}
	for _, a := range SeedKernelUnrecorded {
		m.Unrecorded = append(m.Unrecorded, model.StageAttr(schema.StageKernel, a))
	}
	return withEnd(m)
}

// Fleet returns n migrations (2n sides) with varied, internally
// consistent timings, RAM counts and time data, drawn from a generator
// seeded with seed so files are reproducible. Each side has 8 or 9 phase
// spans plus a root.
func Fleet(n int, seed uint64) []model.Side {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]model.Side, 0, 2*n)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", seed, i)
		src, dst := SeedSource(), SeedDestination()
		src.ID, dst.ID = id, id
		src.StartTime = start.Add(time.Duration(i) * time.Minute)
		dst.StartTime = src.StartTime.Add(-time.Millisecond)
		t := int64(1e12) + int64(i)*int64(1e11)
		var phases []model.PhaseTiming
		for _, p := range schema.Phases {
			d := int64(50e3 + rng.IntN(200e3))
			pt := model.PhaseTiming{Phase: p, BeginNs: t, EndNs: t + d}
			switch p {
			case schema.PhaseRamPushPrePause:
				pt.EndNs = t + int64(1e9+rng.IntN(9e9))
				pt.Pages = int64(200000 + rng.IntN(60000))
				pt.ZeroPages = pt.Pages / 4
				pt.Bytes = (pt.Pages - pt.ZeroPages) * 4096
				pt.Rounds = int64(1 + rng.IntN(6))
			case schema.PhaseRamPushPostPause:
				pt.EndNs = t + int64(50e6+rng.IntN(250e6))
				pt.Pages = int64(1000 + rng.IntN(20000))
				pt.Bytes = pt.Pages * 4096
				pt.Rounds, pt.Paused = 1, true
			}
			phases = append(phases, pt)
			t = pt.EndNs + int64(5e3+rng.IntN(20e3))
		}
		src.Phases = phases
		src.DowntimeNs = int64(100e6 + rng.IntN(300e6))
		var dphases []model.PhaseTiming
		for _, p := range phases {
			if p.Phase.Runs(schema.RoleDestination) {
				p.Pages, p.ZeroPages, p.Bytes, p.Rounds, p.Paused = 0, 0, 0, 0, false
				dphases = append(dphases, p)
			}
		}
		dst.Phases = dphases
		dst.Blackout = &model.Blackout{Ns: src.DowntimeNs + int64(rng.IntN(50e6)), ErrorNs: ptr(int64(40000))}
		out = append(out, withEnd(src), withEnd(dst))
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// withEnd places m's phases on the wall clock from its start, and ends
// its root span with its last phase, as a finished side's does.
func withEnd(m model.Side) model.Side {
	if len(m.Phases) == 0 {
		return m
	}
	m.Phases = slices.Clone(m.Phases)
	base := m.Phases[0].BeginNs
	for i := range m.Phases {
		p := &m.Phases[i]
		p.Start, p.End = m.StartTime.Add(time.Duration(p.BeginNs-base)), m.StartTime.Add(time.Duration(p.EndNs-base))
	}
	m.EndTime = m.Phases[len(m.Phases)-1].End
	return m
}
