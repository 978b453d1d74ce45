// Package sim is the portable vmm backend: a simulated VM whose clocks are
// the host's real clocks and whose RAM is real memory with real dirty-page
// tracking, so the timings a migration observes are real.
//
// A VM's guest is one goroutine per vCPU. Each writes whole pages at the
// configured dirty rate, every page stamped with a header (magic, page
// number, write sequence, body checksum) that VerifyMemory checks, and
// appends the guest TSC it reads to a ring kept in the first pages of guest
// RAM, so GuestContinuity can tell from memory alone whether the guest ever
// saw its TSC go backwards. vCPU 0 also drives a timer device whose deadline
// is kept relative to boot_hrtime and prints progress lines on a serial
// console.
//
// Guest RAM is one allocation; pages are written and copied under striped
// per-page locks, so a copy of a running guest never holds a torn page, and
// each guest write sets its page's bit in an atomic dirty bitmap. The log
// starts clear at Boot: a migration's first round must copy every page.
// Host writes (WritePages, ZeroPages) do not mark pages dirty.
//
// The devices are "vcpu0".."vcpuN-1" (kind "vcpu": the workload's counters
// and RNG state, so a migrated guest carries on the same workload),
// "timer0" (kind "timer") and "com1" (kind "serial"), each with a
// versioned little-endian binary state.
//
// The guest TSC is the host's monotonic time scaled to the guest frequency
// plus a VM-wide offset, as in bhyve; WriteTimeData follows bhyve's rules for
// refusing time data and compensating for its latency.
//
// Errors wrap the vmm sentinels (vmm.ErrInvalidState, vmm.ErrOutOfRange,
// vmm.ErrTimeData, vmm.ErrUnknownDevice, vmm.ErrDeviceVersion,
// vmm.ErrDeviceData, ...); match them with errors.Is. VerifyMemory reports
// damaged pages with ErrCorruptPage; GuestContinuity fails with ErrNoRing on
// memory that holds no TSC ring.
package sim
