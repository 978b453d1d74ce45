package probetest

import (
	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/tracing/schema"
)

// SeedMigrationID is the UUID of the synthetic migration, as the two
// big-endian halves the probes take: 6f9c1d2e-8a4b-4c3d-9e5f-0a1b2c3d4e5f.
const (
	SeedMigrationIDHi uint64 = 0x6f9c1d2e_8a4b4c3d
	SeedMigrationIDLo uint64 = 0x9e5f0a1b_2c3d4e5f
	SeedMigrationID          = "6f9c1d2e-8a4b-4c3d-9e5f-0a1b2c3d4e5f"
)

// seedPhaseTimes are the source's phase begin/end hrtimes from the seed's
// verbose capture (golden/seed-phases.timestamps).
var seedPhaseTimes = []struct {
	phase      schema.Phase
	begin, end int64
}{
	{schema.PhaseSync, 17437355109672, 17437355230924},
	{schema.PhaseRamPushPrePause, 17437355249524, 17446758097054},
	{schema.PhaseRamPushPostPause, 17446758114444, 17446960120090},
	{schema.PhaseTimeData, 17446960141050, 17446960297073},
	{schema.PhaseDeviceState, 17446960307583, 17447021682763},
	{schema.PhaseRamPull, 17447021689593, 17447079199443},
	{schema.PhaseServerState, 17447079210023, 17447143771862},
	{schema.PhaseFinish, 17447143778262, 17447199125099},
}

// SeedRAM lists the source's RAM batches: (pages, paused) per batch, 4 KiB
// pages, in the phase whose pause state matches.
var SeedRAM = []struct {
	Pages  uint64
	Paused bool
}{
	{131072, false}, {131072, false}, {65536, false}, {4099, false},
	{3000, true}, {41, true},
}

// PageSize is the page size of the synthetic migration's RAM batches.
const PageSize = 4096

// seedDestinationShift offsets the destination's phase times from the
// source's; the destination's phases table is not in the seed, any
// plausible times do.
const seedDestinationShift = 4_000

// Time data of the seed's destination (golden/seed-adjustments.txt): the
// source's data as received, after migtrace's adjustment, and after the
// kernel's.
var seedStages = []struct {
	stage      schema.Stage
	tsc        uint64
	bootHrtime int64
	durationNs int64
}{
	{schema.StageMigration, 2330632597459, 17148534696948, 107582},
	{schema.StageUserspace, 2330632882546, 17139299077239, 22431},
	{schema.StageKernel, 2330632966946, 17139299077239, 18210},
}

// Seed time-data constants shared by every stage.
const (
	SeedGuestFreq      uint64 = 2649958945
	SeedGuestUptimeNs  int64  = 879497608301
	SeedMigrateDeltaNs int64  = 107582
)

func call(id probes.ID, args ...uint64) Call {
	c := Call{ID: id}
	copy(c.Args[:], args)
	for i := range args {
		c.Mask[i] = word
	}
	c.Mask[0] = b8 // role or stage
	switch id {
	case probes.IDPhaseBegin:
		c.Mask[1] = b8
	case probes.IDPhaseEnd:
		c.Mask[1], c.Mask[3] = b8, b8
	case probes.IDMigrationEnd, probes.IDRAMRegion:
		c.Mask[3] = b8
	case probes.IDTimeStage:
		c.Mask[7] = b8
	}
	return c
}

func boolWord(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// SeedSource is the source side's probe calls for the synthetic migration,
// in order: its phases table is golden/seed-phases.txt.
func SeedSource() []Call {
	role := uint64(schema.RoleSource)
	calls := []Call{call(probes.IDMigrationBegin, role, SeedMigrationIDHi, SeedMigrationIDLo)}
	for _, pt := range seedPhaseTimes {
		calls = append(calls, call(probes.IDPhaseBegin, role, uint64(pt.phase), uint64(pt.begin)))
		for _, r := range SeedRAM {
			if (pt.phase == schema.PhaseRamPushPrePause && !r.Paused) ||
				(pt.phase == schema.PhaseRamPushPostPause && r.Paused) {
				calls = append(calls, call(probes.IDRAMRegion, role, r.Pages, r.Pages*PageSize, boolWord(r.Paused)))
			}
		}
		calls = append(calls, call(probes.IDPhaseEnd, role, uint64(pt.phase), uint64(pt.end), 0))
	}
	return append(calls, call(probes.IDMigrationEnd, role, SeedMigrationIDHi, SeedMigrationIDLo, 0))
}

// SeedDestination is the destination side's probe calls for the synthetic
// migration: its time-adjustments table is golden/seed-adjustments.txt.
func SeedDestination() []Call {
	role := uint64(schema.RoleDestination)
	calls := []Call{call(probes.IDMigrationBegin, role, SeedMigrationIDHi, SeedMigrationIDLo)}
	for _, pt := range seedPhaseTimes {
		calls = append(calls, call(probes.IDPhaseBegin, role, uint64(pt.phase), uint64(pt.begin+seedDestinationShift)))
		if pt.phase == schema.PhaseTimeData {
			for _, s := range seedStages {
				calls = append(calls, call(probes.IDTimeStage, uint64(s.stage), SeedGuestFreq, s.tsc,
					uint64(s.bootHrtime), uint64(s.durationNs), uint64(SeedGuestUptimeNs), uint64(SeedMigrateDeltaNs), 0))
			}
		}
		calls = append(calls, call(probes.IDPhaseEnd, role, uint64(pt.phase), uint64(pt.end+seedDestinationShift), 0))
	}
	return append(calls, call(probes.IDMigrationEnd, role, SeedMigrationIDHi, SeedMigrationIDLo, 0))
}
