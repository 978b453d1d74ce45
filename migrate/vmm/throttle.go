package vmm

import (
	"errors"
	"fmt"
	"time"
)

// MaxThrottle is the highest throttle, in percent, a Throttler accepts: a
// vCPU throttled at 100 % would never run.
const MaxThrottle = 99

// ThrottleSlice is how long a throttled vCPU runs between two sleeps,
// QEMU's CPU_THROTTLE_TIMESLICE: short enough that the guest sees a
// slower CPU rather than stalls, long enough that the sleeps cost little.
const ThrottleSlice = 10 * time.Millisecond

// ErrThrottleRange: a throttle outside 0 to MaxThrottle percent.
var ErrThrottleRange = errors.New("throttle out of range")

// Throttler is implemented by VMs whose vCPUs can be slowed down, as
// QEMU's auto-converge slows a guest that dirties memory faster than a
// migration carries it. A vCPU throttled at p % sleeps p % of the time, in
// sleeps of ThrottleSleep(p) after each ThrottleSlice it runs, so its
// guest gets (100−p) % of its CPU and dirties memory that much slower.
//
// The throttle is the host's, not the guest's: it does not travel with a
// migration, and it holds across Pause and Resume until set to 0.
type Throttler interface {
	// SetThrottle sets the share of time, 0 to MaxThrottle percent, each
	// vCPU sleeps; 0 runs them at full speed. Other values fail with
	// ErrThrottleRange, a destroyed VM with ErrDestroyed.
	SetThrottle(percent int) error
}

// CheckThrottle refuses a throttle outside 0 to MaxThrottle percent.
func CheckThrottle(percent int) error {
	if percent < 0 || percent > MaxThrottle {
		return fmt.Errorf("%w: %d %%, want 0 to %d", ErrThrottleRange, percent, MaxThrottle)
	}
	return nil
}

// ThrottleSleep is how long a vCPU throttled at percent (checked by
// CheckThrottle) sleeps after each ThrottleSlice it runs, so that it
// sleeps percent % of the time: ThrottleSlice × p / (100 − p), as QEMU's
// cpu_throttle_thread.
func ThrottleSleep(percent int) time.Duration {
	if percent <= 0 || percent > MaxThrottle {
		return 0
	}
	return ThrottleSlice * time.Duration(percent) / time.Duration(100-percent)
}
