package vmm

import "github.com/migtrace/migtrace/migrate/timedata"

// Clock reads the host's clocks.
type Clock interface {
	// Now returns the host's monotonic time (hrtime, ns) and wall clock,
	// read together as one snapshot.
	Now() (hrtime int64, wall timedata.Wallclock)
}

// SystemClock returns the host's real clocks: CLOCK_MONOTONIC for hrtime and
// CLOCK_REALTIME for the wall clock.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}
