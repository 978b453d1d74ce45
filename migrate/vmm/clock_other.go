//go:build !linux

package vmm

import (
	"time"

	"github.com/migtrace/migtrace/migrate/timedata"
)

var monoBase = time.Now()

// Now uses Go's monotonic clock reading, offset to the process start, where
// CLOCK_MONOTONIC is not available through x/sys.
func (systemClock) Now() (int64, timedata.Wallclock) {
	now := time.Now()
	mono := int64(now.Sub(monoBase))
	return mono, timedata.Wallclock{Sec: uint64(now.Unix()), Nsec: uint32(now.Nanosecond())}
}
