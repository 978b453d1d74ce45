//go:build linux && amd64

package kvm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// DevicePath is the KVM device node.
const DevicePath = "/dev/kvm"

// Backend creates KVM VMs. It holds no open resources: each VM opens
// /dev/kvm itself. It is safe for concurrent use.
type Backend struct {
	cfg   config
	freq  uint64 // host TSC Hz, as the probe VM's vCPU reported it
	probe OffsetProbe
}

// New checks that this host can run the backend, probes whether it
// honours TSC-offset writes (by running a small guest for a few
// milliseconds), and returns a Backend. Without options its VMs have
// 64 MiB of RAM dirtied at 16 MiB/s and exit every millisecond.
func New(opts ...Option) (*Backend, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := checkHost(); err != nil {
		return nil, err
	}
	b := &Backend{cfg: cfg}
	if b.probe, err = b.probeTSCOffset(); err != nil {
		return nil, fmt.Errorf("probing TSC offset writes: %w", err)
	}
	return b, nil
}

// checkHost opens /dev/kvm and checks the API version and every
// capability the backend uses, reporting all that are missing at once.
func checkHost() error {
	fd, err := unix.Open(DevicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: opening %s: %w", ErrNotSupported, DevicePath, err)
	}
	defer unix.Close(fd)
	if v, err := ioctl(fd, ioctlGetAPIVersion, 0); err != nil || v != kvmAPIVersion {
		return fmt.Errorf("%w: KVM API version %d (%v), want %d", ErrNotSupported, v, err, kvmAPIVersion)
	}
	var missing []error
	need := func(name string, cap uintptr, mask uintptr) {
		v, err := ioctl(fd, ioctlCheckExtension, cap)
		if err != nil || v&mask != mask || v == 0 {
			missing = append(missing, fmt.Errorf("%s (capability %d = %d)", name, cap, v))
		}
	}
	need("KVM_CAP_ADJUST_CLOCK with REALTIME and HOST_TSC", capAdjustClock, kvmClockRealtime|kvmClockHostTSC)
	need("KVM_CAP_VCPU_ATTRIBUTES", capVCPUAttributes, 1)
	need("KVM_CAP_IMMEDIATE_EXIT", capImmediateExit, 1)
	need("KVM_CAP_GET_TSC_KHZ", capGetTSCKHz, 1)
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %w", ErrNotSupported, errors.Join(missing...))
	}
	return nil
}

// probeTSCOffset boots a small guest, writes a TSC offset 2^40 ticks
// (minutes) away from the current one, runs the guest and compares.
func (b *Backend) probeTSCOffset() (OffsetProbe, error) {
	cfg := b.cfg
	cfg.memoryBytes = hugePage
	cfg.dirtyRate = 0
	cfg.exitInterval = 100 * time.Microsecond
	cfg.sampleInterval = cfg.exitInterval
	vm, err := newVM(b, cfg, b.specFor(cfg.memoryBytes))
	if err != nil {
		return OffsetProbe{}, err
	}
	defer vm.Destroy()
	ctx := context.Background()
	if err := vm.Boot(ctx); err != nil {
		return OffsetProbe{}, err
	}
	if err := vm.Pause(ctx); err != nil {
		return OffsetProbe{}, err
	}
	b.freq = vm.freq
	var p OffsetProbe
	cur, err := getTSCOffset(vm.vcpuFD)
	if err != nil {
		return p, err
	}
	p.Written = cur + 1<<40
	if err := setTSCOffset(vm.vcpuFD, p.Written); err != nil {
		return p, err
	}
	if p.ReadBack, err = getTSCOffset(vm.vcpuFD); err != nil {
		return p, err
	}
	vm.mu.Lock()
	vm.resetSamples()
	vm.mu.Unlock()
	deadline := time.Now().Add(2 * time.Second)
	var samples []ExitSample
	for len(samples) < 16 && time.Now().Before(deadline) {
		if err := vm.Resume(ctx); err != nil {
			return p, err
		}
		time.Sleep(5 * time.Millisecond)
		if err := vm.Pause(ctx); err != nil {
			return p, err
		}
		samples = vm.recentSamples()
	}
	if err := vm.Fault(); err != nil {
		return p, err
	}
	if len(samples) == 0 {
		return p, fmt.Errorf("the probe guest made no exits in 2s")
	}
	_, wall := vm.clock.Now()
	ref, err := vm.hostTSCAt(wall)
	if err != nil {
		return p, err
	}
	diffs := make([]uint64, len(samples))
	for i, s := range samples {
		dt, err := nsToTicks(s.Realtime-wallNs(wall), vm.freq)
		if err != nil {
			return p, err
		}
		diffs[i] = s.GuestTSC - (ref + uint64(dt))
	}
	// Median of the differences relative to the written offset, so the
	// wrap at 2^64 does not disturb the ordering.
	rel := make([]int64, len(diffs))
	for i, d := range diffs {
		rel[i] = int64(d - p.Written)
	}
	slices.Sort(rel)
	p.GuestMinusHost = p.Written + uint64(rel[len(rel)/2])
	p.Samples = len(samples)
	const tolerance = 10_000_000 // ticks: a few ms, far above exit jitter, far below 2^40
	seen := rel[len(rel)/2]
	p.Honoured = p.ReadBack == p.Written && seen > -tolerance && seen < tolerance
	return p, nil
}

// Name returns "kvm".
func (b *Backend) Name() string { return BackendName }

// Clock returns the host clock the backend's VMs use: the real one, as
// KVM's clocks are real.
func (b *Backend) Clock() vmm.Clock { return vmm.SystemClock() }

// TSCOffsetHonoured reports whether this host applies TSC-offset writes.
func (b *Backend) TSCOffsetHonoured() bool { return b.probe.Honoured }

// TSCOffsetProbe returns the details of the start-up probe.
func (b *Backend) TSCOffsetProbe() OffsetProbe { return b.probe }

// TSCFrequency returns the host (and guest) TSC frequency in Hz.
func (b *Backend) TSCFrequency() uint64 { return b.freq }

func (b *Backend) specFor(memoryBytes uint64) vmm.Spec {
	return vmm.Spec{Backend: BackendName, MemoryBytes: memoryBytes, VCPUs: 1, Devices: deviceSpecs()}
}

// DefaultSpec returns the spec of a VM built from the backend's options.
func (b *Backend) DefaultSpec() vmm.Spec { return b.specFor(b.cfg.memoryBytes) }

// New creates a VM in vmm.StateCreated; its memory reads as zeros. Zero
// fields of spec take the backend's defaults; the backend runs one vCPU.
func (b *Backend) New(spec vmm.Spec) (vmm.VM, error) {
	return b.NewVM(spec)
}

// NewVM is New returning the concrete type.
func (b *Backend) NewVM(spec vmm.Spec) (*VM, error) {
	const op = "creating kvm vm"
	if spec.Backend == "" {
		spec.Backend = BackendName
	}
	if spec.MemoryBytes == 0 {
		spec.MemoryBytes = b.cfg.memoryBytes
	}
	if spec.VCPUs == 0 {
		spec.VCPUs = 1
	}
	if spec.Backend != BackendName {
		return nil, fmt.Errorf("%s: %w: backend %q, this is %q", op, vmm.ErrIncompatible, spec.Backend, BackendName)
	}
	if spec.VCPUs != 1 {
		return nil, fmt.Errorf("%s: %w: %d vcpus, this backend runs 1", op, vmm.ErrIncompatible, spec.VCPUs)
	}
	if _, err := newLayout(spec.MemoryBytes); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, vmm.ErrIncompatible, err)
	}
	own := b.specFor(spec.MemoryBytes)
	if spec.Devices != nil {
		if err := spec.Compatible(own); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	return newVM(b, b.cfg, own)
}
