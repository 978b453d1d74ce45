package kvm

import "errors"

// Sentinel errors of this package; match with errors.Is.
var (
	// ErrNotSupported: this host cannot run the backend (not linux/amd64,
	// no /dev/kvm, or a KVM lacking a capability the backend needs).
	ErrNotSupported = errors.New("kvm backend not supported here")
	// ErrGuestFault: the guest stopped in a way its program never does
	// (a shutdown, a failed entry, an unexpected exit).
	ErrGuestFault = errors.New("guest fault")
	// ErrNotKVM: a vmm.VM given to this package is not a kvm VM.
	ErrNotKVM = errors.New("not a kvm VM")
	// ErrNoRing: guest memory holds no TSC ring (the guest never booted,
	// or its memory was not copied).
	ErrNoRing = errors.New("no TSC ring in guest memory")
	// ErrNoSamples: one side of a migration has no bracketed exit samples
	// (the VM was not migrated in, or has not run since).
	ErrNoSamples = errors.New("no exit samples")
)
