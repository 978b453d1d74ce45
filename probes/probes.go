package probes

import (
	"runtime"

	"github.com/migtrace/migtrace/tracing/schema"
)

// The bodies below keep a one-word stack frame alive without touching shared
// memory: runtime.KeepAlive on a local's address makes the compiler reserve
// the frame (PUSHQ BP first) and costs one store. A bare empty body would
// start with RET, which x86 uprobes cannot emulate.

// MigrationBegin marks the start of one migration on the side role. The
// migration's UUID is split into its big-endian halves idHi and idLo.
//
//go:noinline
//go:nosplit
func MigrationBegin(role schema.Role, idHi, idLo uint64) {
	var frame [1]uint64
	runtime.KeepAlive(&frame)
}

// MigrationEnd marks the end of the migration begun by MigrationBegin;
// failed reports whether it ended in failure.
//
//go:noinline
//go:nosplit
func MigrationEnd(role schema.Role, idHi, idLo uint64, failed bool) {
	var frame [1]uint64
	runtime.KeepAlive(&frame)
}

// PhaseBegin marks the start of phase on the side role at hrtime, the
// host's CLOCK_MONOTONIC in ns.
//
//go:noinline
//go:nosplit
func PhaseBegin(role schema.Role, phase schema.Phase, hrtime int64) {
	var frame [1]uint64
	runtime.KeepAlive(&frame)
}

// PhaseEnd marks the end of phase on the side role at hrtime (host
// CLOCK_MONOTONIC ns); failed reports whether the phase failed.
//
//go:noinline
//go:nosplit
func PhaseEnd(role schema.Role, phase schema.Phase, hrtime int64, failed bool) {
	var frame [1]uint64
	runtime.KeepAlive(&frame)
}

// RAMRegion reports one batch of guest pages transferred: pages pages of
// bytes payload bytes in total, while the VM was paused or not.
//
//go:noinline
//go:nosplit
func RAMRegion(role schema.Role, pages, bytes uint64, paused bool) {
	var frame [1]uint64
	runtime.KeepAlive(&frame)
}

// TimeStage reports the destination's time data at one stage: the guest
// frequency and TSC, the guest's boot_hrtime, how long the stage took, the
// guest's uptime and the wall-clock migration delta (after clamping, with
// negative set when the raw delta was negative).
//
//go:noinline
//go:nosplit
func TimeStage(stage schema.Stage, guestFreq, guestTSC uint64, bootHrtime, durationNs, uptimeNs, migrateDeltaNs int64, negative bool) {
	var frame [1]uint64
	runtime.KeepAlive(&frame)
}
