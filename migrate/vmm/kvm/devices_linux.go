//go:build linux && amd64

package kvm

import (
	"context"
	"fmt"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// ExportDevices returns the vcpu and kvmclock state. The first export
// after the vCPU stops reads KVM; later ones return the same snapshot, so
// that a re-export matches what was sent.
func (vm *VM) ExportDevices(ctx context.Context) ([]vmm.DeviceState, error) {
	const op = "exporting device state"
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vm.requireStopped(op); err != nil {
		return nil, err
	}
	if vm.snapVCPU == nil {
		v, err := vm.captureVCPU()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		vm.snapVCPU = &v
	}
	if vm.snapClock == nil {
		ck, err := getClock(vm.vmFD)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		vm.snapClock = &clockState{clock: ck.Clock, flags: ck.Flags & clockKnownFlags, realtime: ck.Realtime, hostTSC: ck.HostTSC}
	}
	return encodeDevices(*vm.snapVCPU, *vm.snapClock), nil
}

func (vm *VM) captureVCPU() (vcpuState, error) {
	var v vcpuState
	var err error
	if v.regs, err = getRegs(vm.vcpuFD); err != nil {
		return v, err
	}
	if v.sregs, err = getSregs(vm.vcpuFD); err != nil {
		return v, err
	}
	if v.msrs, err = getMSRs(vm.vcpuFD, vcpuMSRs); err != nil {
		return v, err
	}
	if v.tscOffset, err = getTSCOffset(vm.vcpuFD); err != nil {
		return v, err
	}
	vm.sampleMu.Lock()
	v.epoch = vm.epoch
	vm.sampleMu.Unlock()
	v.samples = vm.recentSamples()
	return v, nil
}

// ImportDevices installs device state exported by another kvm VM, after
// WriteTimeData. The vCPU's registers, special registers and MSRs are
// set, except MSR_IA32_TSC: the TSC comes from the time data. kvmclock is
// set with KVM_CLOCK_REALTIME, so KVM advances it by the wall-clock time
// since the source read it. Every state is decoded before anything is
// installed; if KVM refuses the vCPU state, the previous one is put back.
func (vm *VM) ImportDevices(ctx context.Context, states []vmm.DeviceState) error {
	const op = "importing device state"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vm.requireStopped(op); err != nil {
		return err
	}
	set, err := decodeDevices(states)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if set.vcpu != nil {
		if err := vm.installVCPU(*set.vcpu); err != nil {
			return fmt.Errorf("%s: %w: %s %q: %w", op, vmm.ErrDeviceData, KindVCPU, VCPUName, err)
		}
		v := *set.vcpu
		vm.snapVCPU, vm.imported = &v, true
	}
	if set.clock != nil {
		c := *set.clock
		data := kvmClockData{Clock: c.clock, Flags: c.flags & kvmClockRealtime, Realtime: c.realtime}
		if err := setClock(vm.vmFD, data); err != nil {
			return fmt.Errorf("%s: %s %q: %w", op, KindClock, ClockName, err)
		}
		vm.snapClock = &c
	}
	return nil
}

// installVCPU sets v's registers, or restores the current ones on failure.
func (vm *VM) installVCPU(v vcpuState) error {
	old, err := vm.captureVCPU()
	if err != nil {
		return err
	}
	apply := func(v vcpuState) error {
		if err := setSregs(vm.vcpuFD, v.sregs); err != nil {
			return err
		}
		if err := setRegs(vm.vcpuFD, v.regs); err != nil {
			return err
		}
		// vcpuMSRs[0] is IA32_TSC, which the time data owns.
		return setMSRs(vm.vcpuFD, vcpuMSRs[1:], v.msrs[1:])
	}
	if err := apply(v); err != nil {
		if rerr := apply(old); rerr != nil {
			return fmt.Errorf("%w (and restoring the previous state: %w)", err, rerr)
		}
		return err
	}
	return nil
}
