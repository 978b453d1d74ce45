// Package kvm is the vmm backend that runs a real guest under Linux KVM.
//
// The guest is a few dozen bytes of hand-assembled 64-bit code run at CPL 3
// (see guestProgram): it reads its TSC into a ring in guest memory, writes
// pages at a configured rate, paced by TSC deltas, and leaves the guest
// with an OUT to port 0x10 at a configured interval. At every such exit
// the host pairs the TSC the guest read just before the OUT with the host
// wall clock (ExitSample); a migration carries the source's last samples
// in the vcpu device state, so the destination can measure how well the
// guest's TSC jump across the blackout matches the wall-clock time that
// passed (MeasureJump; on a running destination, AwaitContinuity waits
// for enough samples and measures).
//
// Guest RAM is anonymous memory registered with KVM_MEM_LOG_DIRTY_PAGES;
// TakeDirty reads KVM_GET_DIRTY_LOG into a host bitmap that RestoreDirty
// also ORs into. Time data maps onto KVM as the kernel's vcpu.rst
// describes: guest TSC = host TSC + the vCPU's TSC offset (KVM does no
// scaling here), frequency = KVM_GET_TSC_KHZ × 1000, hrtime and wall clock
// from the host, boot_hrtime kept by the backend with kvmclock set to the
// guest's uptime. WriteTimeData installs the guest TSC through
// MSR_IA32_TSC and the TSC-offset vCPU attribute. Devices are "vcpu0"
// (registers, special registers, MSRs, TSC offset, exit samples) and
// "kvmclock" (KVM_GET_CLOCK, restored with KVM_CLOCK_REALTIME).
//
// Some hosts (kvm_pvm, a software virtualiser) accept TSC-offset writes
// and ignore them; New detects this by writing an offset and comparing
// both the read-back and the guest's own RDTSC against the host TSC.
// TSCOffsetHonoured reports the result; when it is false the guest's TSC
// is the host's, and continuity reflects the host TSC rather than the
// migration's adjustment.
//
// The backend needs linux/amd64 and read-write access to /dev/kvm;
// elsewhere New fails with an error wrapping ErrNotSupported. Errors wrap
// the vmm sentinels (vmm.ErrInvalidState, vmm.ErrOutOfRange, ...) and
// this package's ErrNotSupported, ErrGuestFault, ErrNoRing and
// ErrNoSamples; match them with errors.Is.
package kvm
