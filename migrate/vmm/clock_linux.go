package vmm

import (
	"golang.org/x/sys/unix"

	"github.com/migtrace/migtrace/migrate/timedata"
)

// Now reads CLOCK_MONOTONIC then CLOCK_REALTIME back to back; the two reads
// are a few tens of ns apart, which bounds the snapshot's skew.
func (systemClock) Now() (int64, timedata.Wallclock) {
	var mono, real unix.Timespec
	// clock_gettime on these clocks cannot fail on Linux (vDSO, valid ids).
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	_ = unix.ClockGettime(unix.CLOCK_REALTIME, &real)
	return mono.Nano(), timedata.Wallclock{Sec: uint64(real.Sec), Nsec: uint32(real.Nsec)}
}
