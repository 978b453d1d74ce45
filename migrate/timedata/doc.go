// Package timedata holds a VM's guest time data and the adjustment that
// carries it from one host to another during a live migration.
//
// The source reads Data from its VMM (one host clock snapshot). The
// destination takes its own snapshot (hrtime and wall clock) and calls
// Adjust: the guest TSC advances by the wall-clock migration delta times the
// guest frequency, and boot_hrtime is rebased so that the guest's uptime is
// preserved on the new host. The math and the order of its checks follow
// propolis (lib/propolis/src/vmm/time.rs); unlike propolis, a zero guest
// frequency or a negative hrtime is an error, never a panic.
//
// Errors returned by Adjust are *AdjustError values; match them with
// errors.Is against the Err* sentinels, or read their Kind.
//
// The package is pure: no I/O, no clocks, no allocation on the success path.
package timedata
