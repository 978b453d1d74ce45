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
// The guest TSC is the host's monotonic time scaled to the guest frequency
// plus a VM-wide offset, as in bhyve; WriteTimeData follows bhyve's rules for
// refusing time data and compensating for its latency.
//
// Errors wrap the vmm sentinels (vmm.ErrInvalidState, vmm.ErrOutOfRange,
// vmm.ErrTimeData, vmm.ErrUnknownDevice, vmm.ErrDeviceVersion,
// vmm.ErrDeviceData, ...); match them with errors.Is. VerifyMemory reports
// damaged pages with ErrCorruptPage.
package sim
