// Package vmmtest checks that a vmm backend keeps the contract of the
// vmm.VM interface, so every backend (sim, kvm) runs the same suite:
//
//	func TestConformance(t *testing.T) {
//		vmmtest.Run(t, vmmtest.Config{Backend: b, Spec: spec})
//	}
//
// It also offers what those checks are built from: Migrate, an in-process
// pre-copy migration between two VMs through the interface alone, and host
// clocks for tests (ManualClock, SkewClock) that step and skew.
package vmmtest
