//go:build !linux || !amd64

package kvm

import (
	"context"
	"fmt"
	"runtime"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// DevicePath is the KVM device node.
const DevicePath = "/dev/kvm"

// Backend would create KVM VMs; on this platform New always fails.
type Backend struct{}

// New fails with an error wrapping ErrNotSupported: KVM needs linux/amd64.
func New(...Option) (*Backend, error) {
	return nil, fmt.Errorf("%w: KVM needs linux/amd64, this is %s/%s", ErrNotSupported, runtime.GOOS, runtime.GOARCH)
}

// Name returns "kvm".
func (b *Backend) Name() string { return BackendName }

// New fails with ErrNotSupported.
func (b *Backend) New(vmm.Spec) (vmm.VM, error) {
	return nil, fmt.Errorf("creating kvm vm: %w", ErrNotSupported)
}

// TSCOffsetHonoured reports false: there is no host to honour anything.
func (b *Backend) TSCOffsetHonoured() bool { return false }

// MeasureContinuity fails with ErrNotKVM: no kvm VM exists here.
func MeasureContinuity(vm vmm.VM) (ContinuityMeasurement, error) {
	return ContinuityMeasurement{}, fmt.Errorf("measuring continuity: %w: %T", ErrNotKVM, vm)
}

// TSCOffsetHonoured fails with ErrNotKVM: no kvm VM exists here.
func TSCOffsetHonoured(vm vmm.VM) (bool, error) {
	return false, fmt.Errorf("%w: %T", ErrNotKVM, vm)
}

// DefaultSpec returns the spec a kvm VM would have.
func (b *Backend) DefaultSpec() vmm.Spec {
	return vmm.Spec{Backend: BackendName, MemoryBytes: DefaultMemoryBytes, VCPUs: 1, Devices: deviceSpecs()}
}

// TSCOffsetProbe returns the zero probe: nothing was probed.
func (b *Backend) TSCOffsetProbe() OffsetProbe { return OffsetProbe{} }

// AwaitContinuity fails with ErrNotKVM: no kvm VM exists here.
func AwaitContinuity(_ context.Context, vm vmm.VM) (ContinuityMeasurement, error) {
	return ContinuityMeasurement{}, fmt.Errorf("measuring continuity: %w: %T", ErrNotKVM, vm)
}
