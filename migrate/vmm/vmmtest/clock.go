package vmmtest

import (
	"sync"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
)

// ManualClock is a vmm.Clock that moves only when told to. It is safe for
// concurrent use.
type ManualClock struct {
	mu     sync.Mutex
	hrtime int64
	wall   timedata.Wallclock
}

var _ vmm.Clock = (*ManualClock)(nil)

// NewManualClock returns a clock reading hrtime and wall.
func NewManualClock(hrtime int64, wall timedata.Wallclock) *ManualClock {
	return &ManualClock{hrtime: hrtime, wall: wall}
}

// Now returns the clock's current readings.
func (c *ManualClock) Now() (int64, timedata.Wallclock) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hrtime, c.wall
}

// Advance moves both clocks forward by ns, as time passing does.
func (c *ManualClock) Advance(ns int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hrtime += ns
	c.wall = addWall(c.wall, ns)
}

// StepWall moves only the wall clock, by ns (negative steps it back), as
// an NTP step or an operator's date(1) does.
func (c *ManualClock) StepWall(ns int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = addWall(c.wall, ns)
}

// SkewClock derives a second host's clocks from a base clock: its hrtime
// is offset (the hosts booted at different times), its wall clock runs
// fast or slow by a rate in parts per million, and can be stepped. It is
// safe for concurrent use.
type SkewClock struct {
	base vmm.Clock

	mu         sync.Mutex
	origin     int64 // base hrtime when the clock was made
	hrOffset   int64
	ppm        int64
	wallOffset int64
}

var _ vmm.Clock = (*SkewClock)(nil)

// NewSkewClock returns base's clocks with hrtime shifted by hrtimeOffset ns
// and the wall clock drifting by ppm parts per million from now on.
func NewSkewClock(base vmm.Clock, hrtimeOffset, ppm int64) *SkewClock {
	origin, _ := base.Now()
	return &SkewClock{base: base, origin: origin, hrOffset: hrtimeOffset, ppm: ppm}
}

// StepWall moves the wall clock by ns.
func (c *SkewClock) StepWall(ns int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wallOffset += ns
}

// Now returns the skewed readings from one base snapshot.
func (c *SkewClock) Now() (int64, timedata.Wallclock) {
	hrtime, wall := c.base.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	drift := (hrtime - c.origin) / 1_000_000 * c.ppm // whole ms × ppm = ns
	return hrtime + c.hrOffset, addWall(wall, c.wallOffset+drift)
}

// addWall adds ns to w, clamping at the epoch rather than failing: a test
// clock stepped before 1970 reads 1970.
func addWall(w timedata.Wallclock, ns int64) timedata.Wallclock {
	if out, ok := w.AddNs(ns); ok {
		return out
	}
	return timedata.Wallclock{}
}
