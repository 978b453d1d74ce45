// Package peerbench measures migtrace against a peer, QEMU, on one
// machine: the same guest size, dirty rate, bandwidth cap and downtime
// target, migrated on loopback by both, alternately, N times each.
//
// QEMU runs a tiny guest of this package's own (package guest: a
// multiboot binary that enters long mode, drops to ring 3 and dirties
// memory at a chosen rate) under KVM, driven over QMP (Client) with the
// events capability on, so that its blackout is measured from the
// source's STOP event to the destination's RESUME event, both stamped by
// the host clock. migtrace runs as `migtrace serve` processes, migrated
// with `migtrace migrate`, and its figures come from its API and are
// checked against its trace files.
//
// Errors name the step that failed ("starting the destination qemu:
// ..."); QMP failures wrap *CommandError, malformed QMP wraps
// ErrMalformed and a lost connection ErrClosed.
package peerbench
