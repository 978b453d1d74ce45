// Package vmm defines the virtual machine that migrate moves: its lifecycle,
// its RAM with dirty-page tracking, its guest time data, its device state and
// the spec two hosts compare before a migration.
//
// Backends live in sub-packages: sim (portable, the default) and kvm (Linux).
// Callers use only the VM and Backend interfaces, so a bhyve backend would
// fit without changing them.
//
// Host clocks are read through the Clock interface; SystemClock reads
// CLOCK_MONOTONIC and CLOCK_REALTIME, and tests inject their own.
package vmm
