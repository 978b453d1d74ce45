package vmm

import (
	"context"
	"fmt"
)

// TSCContinuity is a backend's measurement, once a migrated guest runs, of
// how far its TSC's advance across the blackout strayed from the elapsed
// wall time.
type TSCContinuity struct {
	// ErrorNs is the median error in ns (positive: the guest TSC ran ahead).
	ErrorNs int64
	// Samples is the number of (guest TSC, host wall clock) samples used.
	Samples int
	// Sufficient is false when too few samples were taken to trust ErrorNs.
	Sufficient bool
	// OffsetHonoured says whether the host applies TSC offset writes. When
	// it does not, the guest TSC is the host's, and continuity reflects the
	// host TSC rather than the migration's adjustment.
	OffsetHonoured bool
}

// String is the one-line summary, e.g. "guest TSC continuity: median error
// 0.42 µs over 127 samples (TSC offset honoured: no)".
func (c TSCContinuity) String() string {
	honoured := "no"
	if c.OffsetHonoured {
		honoured = "yes"
	}
	return fmt.Sprintf("guest TSC continuity: median error %.2f µs over %d samples (TSC offset honoured: %s)",
		float64(c.ErrorNs)/1e3, c.Samples, honoured)
}

// ContinuityMeter is implemented by VMs whose guest can be timed against
// the host's wall clock (the kvm backend). The destination calls it right
// after resuming a migrated VM.
type ContinuityMeter interface {
	// TSCOffsetHonoured reports whether the host applies TSC offset writes.
	TSCOffsetHonoured() bool
	// MeasureTSCContinuity waits, until ctx ends, for enough samples from
	// the running guest and measures its continuity.
	MeasureTSCContinuity(ctx context.Context) (TSCContinuity, error)
}
