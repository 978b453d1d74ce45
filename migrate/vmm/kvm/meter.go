package kvm

import (
	"context"
	"math"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// toTSCContinuity converts a measurement to the backend-neutral form.
func (m ContinuityMeasurement) toTSCContinuity() vmm.TSCContinuity {
	return vmm.TSCContinuity{
		ErrorNs:        int64(math.Round(m.ErrorNs)),
		Samples:        m.Before + m.After,
		Sufficient:     m.Sufficient(),
		OffsetHonoured: m.TSCOffsetHonoured,
	}
}

// measureTSCContinuity implements vmm.ContinuityMeter for a kvm VM.
func measureTSCContinuity(ctx context.Context, vm vmm.VM) (vmm.TSCContinuity, error) {
	m, err := AwaitContinuity(ctx, vm)
	if err != nil {
		return vmm.TSCContinuity{}, err
	}
	return m.toTSCContinuity(), nil
}
