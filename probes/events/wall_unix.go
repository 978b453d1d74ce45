//go:build unix

package events

import (
	"time"

	"golang.org/x/sys/unix"
)

// MonotonicToWall returns the wall clock minus CLOCK_MONOTONIC now: add it
// to a probe timestamp (bpf_ktime_get_ns) or a probe hrtime to get a wall
// time, to within the time between the two clock reads.
func MonotonicToWall() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, err
	}
	return time.Duration(time.Now().UnixNano() - ts.Nano()), nil
}
