//go:build linux && amd64

package kvm

import (
	"context"
	"fmt"
	"time"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
)

func wallNs(w timedata.Wallclock) int64 { return int64(w.Sec)*timedata.NsPerSec + int64(w.Nsec) }

// hostRDTSC reads this CPU's TSC (rdtsc_linux_amd64.s).
func hostRDTSC() uint64

// hostTSCAt returns the host TSC at wall-clock instant wall. KVM_GET_CLOCK
// gives a (realtime, host TSC) pair the kernel reads atomically, when its
// master clock runs on a TSC clocksource; otherwise the pair is read here,
// the wall clock between two RDTSCs. Either pair is then moved to wall at
// the TSC frequency.
func (vm *VM) hostTSCAt(wall timedata.Wallclock) (uint64, error) {
	realtime, tsc, ok, err := kernelTSCPair(vm.vmFD)
	if err != nil {
		return 0, err
	}
	if !ok {
		realtime, tsc = userTSCPair()
	}
	dt, err := nsToTicks(wallNs(wall)-realtime, vm.freq)
	if err != nil {
		return 0, err
	}
	return tsc + uint64(dt), nil
}

// kernelTSCPair returns KVM_GET_CLOCK's realtime and host TSC, or false
// when the kernel does not provide them.
func kernelTSCPair(vmFD int) (realtime int64, tsc uint64, ok bool, err error) {
	ck, err := getClock(vmFD)
	if err != nil {
		return 0, 0, false, err
	}
	if ck.Flags&(kvmClockRealtime|kvmClockHostTSC) != kvmClockRealtime|kvmClockHostTSC {
		return 0, 0, false, nil
	}
	return int64(ck.Realtime), ck.HostTSC, true, nil
}

// userTSCPair reads the wall clock between two RDTSCs and pairs it with
// their midpoint.
func userTSCPair() (realtime int64, tsc uint64) {
	t0 := hostRDTSC()
	realtime = time.Now().UnixNano()
	t1 := hostRDTSC()
	return realtime, t0 + (t1-t0)/2
}

// ReadTimeData returns the time data from one host clock snapshot: the
// guest TSC is the host TSC at the snapshot plus the vCPU's TSC offset as
// KVM reads it back, so on a host that ignores offset writes it is the
// truth, not what was asked for.
func (vm *VM) ReadTimeData(ctx context.Context) (timedata.Data, error) {
	const op = "reading time data"
	if err := ctx.Err(); err != nil {
		return timedata.Data{}, fmt.Errorf("%s: %w", op, err)
	}
	vm.memMu.RLock()
	defer vm.memMu.RUnlock()
	if vm.mem == nil {
		return timedata.Data{}, fmt.Errorf("%s: %w", op, vmm.ErrDestroyed)
	}
	hrtime, wall := vm.clock.Now()
	host, err := vm.hostTSCAt(wall)
	if err != nil {
		return timedata.Data{}, fmt.Errorf("%s: %w", op, err)
	}
	return timedata.Data{
		GuestFreq:  vm.freq,
		GuestTSC:   host + vm.tscOffset.Load(),
		Hrtime:     hrtime,
		Wallclock:  wall,
		BootHrtime: vm.bootHrtime.Load(),
	}, nil
}

// installTSCOffset writes the vCPU's TSC offset and reads it back; a
// read-back that differs marks the VM's offsets as not honoured. The vCPU
// must be stopped.
func (vm *VM) installTSCOffset(offset uint64) error {
	if err := setTSCOffset(vm.vcpuFD, offset); err != nil {
		return err
	}
	got, err := getTSCOffset(vm.vcpuFD)
	if err != nil {
		return err
	}
	vm.tscOffset.Store(got)
	if got != offset {
		vm.honoured.Store(false)
	}
	return nil
}

// WriteTimeData installs d as bhyve does, mapped onto KVM's procedure in
// vcpu.rst: frequency 0, an hrtime or boot_hrtime after the VMM's own
// snapshot, or a frequency other than this host's (KVM scales no TSC
// here) are refused with vmm.ErrTimeData. The latency from d.Hrtime to the
// snapshot, in guest ticks, is added to d.GuestTSC, and the result becomes
// the guest TSC at the snapshot: written to MSR_IA32_TSC, then set exactly
// as TSC offset = guest TSC − host TSC (the host TSC at the snapshot comes
// from KVM_GET_CLOCK). boot_hrtime is kept verbatim and kvmclock set to
// the guest's uptime. The wall clock is ignored. The VM must not run.
func (vm *VM) WriteTimeData(ctx context.Context, d timedata.Data) (vmm.TimeWrite, error) {
	const op = "writing time data"
	if err := ctx.Err(); err != nil {
		return vmm.TimeWrite{}, fmt.Errorf("%s: %w", op, err)
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vm.requireStopped(op); err != nil {
		return vmm.TimeWrite{}, err
	}
	if d.GuestFreq != 0 && d.GuestFreq != vm.freq {
		return vmm.TimeWrite{}, fmt.Errorf("%s: %w: guest frequency %d Hz, this host's TSC runs at %d Hz and the backend does not scale",
			op, vmm.ErrTimeData, d.GuestFreq, vm.freq)
	}
	now, wall := vm.clock.Now()
	tw, err := vmm.PrepareTimeWrite(d, now)
	if err != nil {
		return vmm.TimeWrite{}, fmt.Errorf("%s: %w", op, err)
	}
	guest := tw.Applied.GuestTSC // the guest TSC at now
	host, err := vm.hostTSCAt(wall)
	if err != nil {
		return vmm.TimeWrite{}, fmt.Errorf("%s: %w", op, err)
	}
	// The MSR write is how older userspace sets the TSC; the offset
	// attribute that follows sets it exactly, overriding the MSR's
	// approximation of "now".
	if err := setMSRs(vm.vcpuFD, []uint32{msrIA32TSC}, []uint64{guest}); err != nil {
		return vmm.TimeWrite{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := vm.installTSCOffset(guest - host); err != nil {
		return vmm.TimeWrite{}, fmt.Errorf("%s: %w", op, err)
	}
	uptime := now - d.BootHrtime
	if err := setClock(vm.vmFD, kvmClockData{Clock: uint64(uptime)}); err != nil {
		return vmm.TimeWrite{}, fmt.Errorf("%s: %w", op, err)
	}
	vm.bootHrtime.Store(d.BootHrtime)
	if !vm.imported {
		// The TSC offset and kvmclock changed; an imported snapshot is the
		// source's state and stays what a re-export must return.
		vm.snapVCPU, vm.snapClock = nil, nil
	}
	end, _ := vm.clock.Now()
	tw.Duration = max(end-now, 0)
	return tw, nil
}
