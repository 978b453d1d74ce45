package vmm

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/migtrace/migtrace/migrate/timedata"
)

// PageSize is the size of a guest page in bytes.
const PageSize = 4096

// Sentinel errors shared by all backends; match with errors.Is.
var (
	// ErrInvalidState: the operation is not allowed in the VM's current
	// state (e.g. Pause on a VM that is not running).
	ErrInvalidState = errors.New("vm is not in a state that allows this")
	// ErrDestroyed: the VM has been destroyed.
	ErrDestroyed = errors.New("vm destroyed")
	// ErrOutOfRange: a page range lies outside guest memory.
	ErrOutOfRange = errors.New("page range outside guest memory")
	// ErrTimeData: the VMM refused time data (zero frequency, a value from
	// the future, ...). The wrapping error says which.
	ErrTimeData = errors.New("time data refused")
	// ErrUnknownDevice: imported device state names a device this VM lacks.
	ErrUnknownDevice = errors.New("unknown device")
	// ErrDeviceVersion: imported device state has a version this VM cannot read.
	ErrDeviceVersion = errors.New("unsupported device state version")
	// ErrDeviceData: imported device state is truncated or malformed.
	ErrDeviceData = errors.New("malformed device state")
	// ErrIncompatible: two specs cannot migrate between each other.
	ErrIncompatible = errors.New("incompatible instance spec")
)

// State is a VM's lifecycle state.
type State int

// The lifecycle states. A VM created for an incoming migration starts in
// StateCreated and goes straight to StateRunning on Resume, without Boot.
const (
	StateCreated State = iota
	StateRunning
	StatePaused
	StateDestroyed
)

func (s State) String() string {
	switch s {
	case StateCreated:
		return "created"
	case StateRunning:
		return "running"
	case StatePaused:
		return "paused"
	case StateDestroyed:
		return "destroyed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Spec describes a VM's shape. The destination builds its VM from the
// source's Spec, after checking Compatible against what it can host.
type Spec struct {
	// Backend names the backend ("sim", "kvm").
	Backend string `json:"backend"`
	// MemoryBytes is the guest RAM size, a multiple of PageSize.
	MemoryBytes uint64 `json:"memory_bytes"`
	// VCPUs is the number of virtual CPUs.
	VCPUs int `json:"vcpus"`
	// Devices lists the emulated devices and their state versions.
	Devices []DeviceSpec `json:"devices"`
}

// DeviceSpec names one device and the version of its state format.
type DeviceSpec struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Version uint32 `json:"version"`
}

// Pages returns the number of guest pages.
func (s Spec) Pages() uint64 { return s.MemoryBytes / PageSize }

// Compatible reports whether a VM of spec s can be migrated into a host that
// offers spec o: same backend, memory, vCPUs and devices (by name, kind and
// version). The error names every difference.
func (s Spec) Compatible(o Spec) error {
	var diffs []error
	if s.Backend != o.Backend {
		diffs = append(diffs, fmt.Errorf("backend %q vs %q", s.Backend, o.Backend))
	}
	if s.MemoryBytes != o.MemoryBytes {
		diffs = append(diffs, fmt.Errorf("memory %d vs %d bytes", s.MemoryBytes, o.MemoryBytes))
	}
	if s.VCPUs != o.VCPUs {
		diffs = append(diffs, fmt.Errorf("vcpus %d vs %d", s.VCPUs, o.VCPUs))
	}
	theirs := make(map[string]DeviceSpec, len(o.Devices))
	for _, d := range o.Devices {
		theirs[d.Name] = d
	}
	for _, d := range s.Devices {
		t, ok := theirs[d.Name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Errorf("device %q missing", d.Name))
		case t != d:
			diffs = append(diffs, fmt.Errorf("device %q: %s v%d vs %s v%d", d.Name, d.Kind, d.Version, t.Kind, t.Version))
		}
		delete(theirs, d.Name)
	}
	for name := range theirs {
		diffs = append(diffs, fmt.Errorf("extra device %q", name))
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrIncompatible, errors.Join(diffs...))
}

// DeviceState is one device's exported state.
type DeviceState struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Version uint32 `json:"version"`
	Data    []byte `json:"data"`
}

// TimeWrite reports what the VMM did with time data written to it: bhyve
// compensates for the latency between the caller's host snapshot and its
// own receipt by advancing the guest TSC (the "Kernel" stage).
type TimeWrite struct {
	// Applied is the time data the VMM installed: the guest TSC including
	// its latency correction; boot_hrtime as given.
	Applied timedata.Data
	// Latency is the VMM's hrtime at receipt minus the caller's hrtime, ns.
	Latency int64
	// TSCCorrection is Latency in guest ticks, added to the guest TSC.
	TSCCorrection uint64
	// Duration is how long the write took inside the VMM, ns.
	Duration int64
}

// Continuity is the guest's own view of its TSC, read from the ring of TSC
// samples the guest keeps in its memory.
type Continuity struct {
	// Samples is the number of ring entries read.
	Samples int
	// Monotonic is false if any sample is below its predecessor.
	Monotonic bool
	// FirstBad is the index of the first non-monotonic sample, if any.
	FirstBad int
	// Last is the newest sample.
	Last uint64
}

// VM is one virtual machine. Methods are safe for concurrent use unless
// noted. Page numbers are guest-physical addresses divided by PageSize.
type VM interface {
	// Spec returns the VM's spec.
	Spec() Spec
	// State returns the lifecycle state.
	State() State

	// Boot starts a fresh guest (StateCreated -> StateRunning): zeroed
	// memory, boot_hrtime = now, vCPUs running their workload.
	Boot(ctx context.Context) error
	// Pause stops the vCPUs at a clean point (StateRunning -> StatePaused).
	// When it returns no vCPU touches memory, time data or devices.
	Pause(ctx context.Context) error
	// Resume starts the vCPUs (StatePaused or StateCreated -> StateRunning).
	// A VM created for an incoming migration runs from the imported state.
	Resume(ctx context.Context) error
	// Destroy stops the VM and frees its memory. It is idempotent.
	Destroy() error

	// ReadPages copies len(dst)/PageSize pages starting at page first into
	// dst. Reading a running VM is allowed (the dirty log catches races).
	ReadPages(first uint64, dst []byte) error
	// WritePages copies src into guest memory starting at page first. It
	// does not mark the pages dirty.
	WritePages(first uint64, src []byte) error
	// ZeroPages sets count pages starting at first to zero.
	ZeroPages(first, count uint64) error
	// TakeDirty reads and clears the dirty bits of pages [first,
	// first+count) into bitmap: bit i%64 of bitmap[i/64] is page first+i.
	// bitmap must hold at least count bits; it is overwritten.
	TakeDirty(first, count uint64, bitmap []uint64) error
	// RestoreDirty sets (ORs in) the dirty bits in bitmap, laid out as for
	// TakeDirty; a failed migration uses it to put back what it took.
	RestoreDirty(first, count uint64, bitmap []uint64) error

	// ReadTimeData returns the time data from one host clock snapshot.
	ReadTimeData(ctx context.Context) (timedata.Data, error)
	// WriteTimeData installs d, following bhyve's rules: frequency 0 and an
	// hrtime or boot_hrtime in the future are refused (ErrTimeData); the
	// latency since d.Hrtime is added to the guest TSC; boot_hrtime is set
	// verbatim; the wall clock is ignored. The VM must not be running.
	WriteTimeData(ctx context.Context, d timedata.Data) (TimeWrite, error)
	// Clock is the host clock the VM's time data is based on.
	Clock() Clock

	// ExportDevices returns every device's state; the VM must be paused.
	ExportDevices(ctx context.Context) ([]DeviceState, error)
	// ImportDevices installs device state, after WriteTimeData (timers are
	// rebased on the imported boot_hrtime). Unknown devices or versions are
	// refused with ErrUnknownDevice or ErrDeviceVersion.
	ImportDevices(ctx context.Context, states []DeviceState) error

	// GuestContinuity reads the guest's TSC ring from its memory.
	GuestContinuity() (Continuity, error)
}

// PageVisitor is implemented by VMs that can show their pages in place,
// sparing the copy ReadPages makes: fn sees page page's bytes, which are
// valid only during the call and must not be modified.
type PageVisitor interface {
	VisitPages(first, count uint64, fn func(page uint64, data []byte)) error
}

// PageWriter is implemented by VMs that let a caller fill guest pages in
// place, sparing the copy WritePages makes: WritablePages returns the
// memory of count pages from first. Only a VM that has never run gives it
// (StateCreated, as a VM being migrated in is), so nothing else touches
// those pages; it is valid until the VM is resumed or destroyed. Writes
// through it, like WritePages, are not marked dirty.
type PageWriter interface {
	WritablePages(first, count uint64) ([]byte, error)
}

// Backend creates VMs of one kind.
type Backend interface {
	// Name is the backend's name, as in Spec.Backend.
	Name() string
	// New creates a VM in StateCreated with the given spec; its memory
	// reads as zeros. Boot it to start a fresh guest, or import a migration
	// into it and Resume.
	New(spec Spec) (VM, error)
}

// RequireState is the lifecycle check every backend makes before an
// operation: nil when s is one of want; otherwise an error, prefixed with
// op, wrapping ErrDestroyed for a destroyed VM or ErrInvalidState naming
// the state it is in and the states op needs.
func RequireState(op string, s State, want ...State) error {
	for _, w := range want {
		if s == w {
			return nil
		}
	}
	if s == StateDestroyed {
		return fmt.Errorf("%s: %w", op, ErrDestroyed)
	}
	names := make([]string, len(want))
	for i, w := range want {
		names[i] = w.String()
	}
	return fmt.Errorf("%s: %w: vm is %s, want %s", op, ErrInvalidState, s, strings.Join(names, " or "))
}
