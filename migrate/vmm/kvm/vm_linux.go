//go:build linux && amd64

package kvm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// VM is one KVM virtual machine with one vCPU; it implements vmm.VM. Its
// methods are safe for concurrent use.
type VM struct {
	backend *Backend
	cfg     config
	spec    vmm.Spec
	layout  layout
	clock   vmm.Clock
	freq    uint64 // guest TSC Hz = host TSC Hz (no scaling)

	// mu serialises lifecycle changes, time-data writes and device state
	// import and export. The vCPU goroutine never takes it.
	mu    sync.Mutex
	state atomic.Int32 // vmm.State

	// memMu guards mem and the fds, which Destroy releases; accessors hold
	// it shared for a whole call.
	memMu  sync.RWMutex
	mem    []byte
	run    []byte // the vCPU's kvm_run page
	vmFD   int
	vcpuFD int

	// tscOffset is the vCPU's TSC offset as KVM last read it back; it is
	// read while the vCPU runs (vCPU ioctls would wait for KVM_RUN).
	tscOffset  atomic.Uint64
	bootHrtime atomic.Int64
	// honoured turns false if a TSC-offset write here reads back wrong.
	honoured atomic.Bool

	dirtyMu sync.Mutex
	pending []uint64 // dirty bits taken from KVM and not yet handed out
	logBuf  []uint64

	// vCPU goroutine control. halt is closed with stop set, to cut short
	// a throttle sleep.
	stop  atomic.Bool
	tid   atomic.Int32
	done  chan struct{}
	halt  chan struct{}
	fault atomic.Pointer[error]
	// throttle is the share of time, in percent, the vCPU thread sleeps.
	throttle atomic.Int32

	// Exit samples; see recordSample.
	sampleMu sync.Mutex
	epoch    uint32
	recent   []ExitSample // ring of the latest ContinuityWindow; sample k in slot k%ContinuityWindow
	recentN  int
	first    []ExitSample // the first ContinuityWindow of this epoch
	before   []ExitSample // the previous epoch's last ones, after a migration in
	// newRun is set when the vCPU starts: the previous sample's OUT was
	// completed by a pause, so its bracket would span the pause.
	newRun bool

	// Device snapshots (vm.mu): taken at the first export after the vCPU
	// stopped, or installed by an import, so repeated exports agree.
	snapVCPU  *vcpuState
	snapClock *clockState
	imported  bool
}

// newVM opens /dev/kvm, creates the VM, its memory slot and its vCPU.
func newVM(b *Backend, cfg config, spec vmm.Spec) (vm *VM, err error) {
	l, err := newLayout(spec.MemoryBytes)
	if err != nil {
		return nil, err
	}
	vm = &VM{backend: b, cfg: cfg, spec: spec, layout: l, clock: vmm.SystemClock(), vmFD: -1, vcpuFD: -1}
	vm.honoured.Store(b.probe.Honoured || b.probe.Samples == 0)
	defer func() {
		if err != nil {
			vm.release()
			err = fmt.Errorf("creating kvm vm: %w", err)
		}
	}()
	sys, err := unix.Open(DevicePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s: %w", ErrNotSupported, DevicePath, err)
	}
	defer unix.Close(sys)
	fd, err := ioctl(sys, ioctlCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	vm.vmFD = int(fd) // KVM makes its fds close-on-exec
	if vm.mem, err = mapGuestMemory(spec.MemoryBytes); err != nil {
		return nil, err
	}
	region := kvmMemoryRegion{Flags: kvmMemLogDirtyPages, MemorySize: spec.MemoryBytes,
		UserspaceAddr: uint64(uintptr(unsafe.Pointer(&vm.mem[0])))}
	if err := ioctlPtr(vm.vmFD, ioctlSetUserMemRegion, &region); err != nil {
		return nil, fmt.Errorf("KVM_SET_USER_MEMORY_REGION: %w", err)
	}
	if fd, err = ioctl(vm.vmFD, ioctlCreateVCPU, 0); err != nil {
		return nil, fmt.Errorf("KVM_CREATE_VCPU: %w", err)
	}
	vm.vcpuFD = int(fd)
	if err := setSupportedCPUID(sys, vm.vcpuFD); err != nil {
		return nil, err
	}
	khz, err := ioctl(vm.vcpuFD, ioctlGetTSCKHz, 0)
	if err != nil || khz == 0 {
		return nil, fmt.Errorf("%w: KVM_GET_TSC_KHZ = %d: %v", ErrNotSupported, khz, err)
	}
	vm.freq = uint64(khz) * 1000
	size, err := ioctl(sys, ioctlGetVCPUMmapSize, 0)
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	if vm.run, err = unix.Mmap(vm.vcpuFD, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err != nil {
		return nil, fmt.Errorf("mapping kvm_run: %w", err)
	}
	if !hasTSCOffset(vm.vcpuFD) {
		return nil, fmt.Errorf("%w: the vCPU has no KVM_VCPU_TSC_OFFSET attribute", ErrNotSupported)
	}
	// KVM_GET_CLOCK reports realtime and the host TSC only once the
	// master clock runs (and only on a TSC clocksource); a KVM_SET_CLOCK
	// starts it without running the guest.
	if err := setClock(vm.vmFD, kvmClockData{}); err != nil {
		return nil, err
	}
	off, err := getTSCOffset(vm.vcpuFD)
	if err != nil {
		return nil, err
	}
	vm.tscOffset.Store(off)
	words := (l.pages + 63) / 64
	vm.pending = make([]uint64, words)
	vm.logBuf = make([]uint64, words)
	vm.recent = make([]ExitSample, ContinuityWindow)
	vm.state.Store(int32(vmm.StateCreated))
	return vm, nil
}

// release closes and unmaps whatever newVM or Destroy holds.
func (vm *VM) release() {
	if vm.run != nil {
		_ = unix.Munmap(vm.run)
		vm.run = nil
	}
	if vm.vcpuFD >= 0 {
		_ = unix.Close(vm.vcpuFD)
		vm.vcpuFD = -1
	}
	if vm.vmFD >= 0 {
		_ = unix.Close(vm.vmFD)
		vm.vmFD = -1
	}
	if vm.mem != nil {
		_ = unix.Munmap(vm.mem)
		vm.mem = nil
	}
}

// Spec returns the VM's spec.
func (vm *VM) Spec() vmm.Spec {
	s := vm.spec
	s.Devices = append([]vmm.DeviceSpec(nil), vm.spec.Devices...)
	return s
}

// State returns the lifecycle state.
func (vm *VM) State() vmm.State { return vmm.State(vm.state.Load()) }

// Clock returns the host's real clocks.
func (vm *VM) Clock() vmm.Clock { return vm.clock }

// TSCOffsetHonoured reports whether this host applies the TSC offsets
// written to this VM: the backend's start-up probe said so and every
// offset written since read back as written.
func (vm *VM) TSCOffsetHonoured() bool { return vm.honoured.Load() }

// Fault returns the error that stopped the guest on its own, if any; it
// wraps ErrGuestFault.
func (vm *VM) Fault() error {
	if p := vm.fault.Load(); p != nil {
		return *p
	}
	return nil
}

func (vm *VM) requireStopped(op string) error {
	return vmm.RequireState(op, vm.State(), vmm.StateCreated, vmm.StatePaused)
}

// ticks converts a non-negative duration in ns to guest ticks.
func (vm *VM) ticks(d time.Duration) uint64 {
	t, _ := nsToTicks(int64(d), vm.freq)
	return uint64(t)
}

// Boot starts a fresh guest: memory zeroed and loaded with the program,
// its page tables and an empty TSC ring; the dirty log cleared; kvmclock
// at 0, the guest TSC at 0 (if the host honours offsets) and boot_hrtime
// now.
func (vm *VM) Boot(ctx context.Context) error {
	const op = "booting vm"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vmm.RequireState(op, vm.State(), vmm.StateCreated); err != nil {
		return err
	}
	// MADV_DONTNEED makes private anonymous pages read as zero again.
	if err := unix.Madvise(vm.mem, unix.MADV_DONTNEED); err != nil {
		return fmt.Errorf("%s: zeroing memory: %w", op, err)
	}
	vm.layout.writeFirmware(vm.mem)
	if err := vm.bootCPU(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	now, wall := vm.clock.Now()
	if err := setClock(vm.vmFD, kvmClockData{}); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	hostTSC, err := vm.hostTSCAt(wall)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := vm.installTSCOffset(-hostTSC); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	vm.bootHrtime.Store(now)
	vm.dirtyMu.Lock()
	err = vm.fetchDirtyLog()
	clear(vm.pending)
	vm.dirtyMu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: clearing the dirty log: %w", op, err)
	}
	vm.resetSamples()
	vm.snapVCPU, vm.snapClock, vm.imported = nil, nil, false
	vm.startVCPU()
	return nil
}

// bootCPU puts the vCPU in 64-bit mode at CPL 3 with the program's
// registers. No GDT or IDT is needed in memory: KVM takes segment state
// from kvm_sregs, and the program raises no exception.
func (vm *VM) bootCPU() error {
	s, err := getSregs(vm.vcpuFD)
	if err != nil {
		return err
	}
	code := kvmSegment{Limit: 0xffff_ffff, Selector: 0x1b, Type: 0xb, Present: 1, DPL: 3, S: 1, L: 1, G: 1}
	data := kvmSegment{Limit: 0xffff_ffff, Selector: 0x23, Type: 0x3, Present: 1, DPL: 3, DB: 1, S: 1, G: 1}
	s.CS = code
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.TR = kvmSegment{Limit: 0x67, Type: 0xb, Present: 1}
	s.LDT = kvmSegment{Type: 0x2, Present: 1, Limit: 0xffff}
	const (
		cr0PE, cr0ET, cr0NE, cr0PG = 1 << 0, 1 << 4, 1 << 5, 1 << 31
		cr4PAE                     = 1 << 5
		eferLME, eferLMA           = 1 << 8, 1 << 10
	)
	s.CR0 = cr0PE | cr0ET | cr0NE | cr0PG
	s.CR4 = cr4PAE
	s.CR3 = pml4Page * vmm.PageSize
	s.EFER = eferLME | eferLMA
	if err := setSregs(vm.vcpuFD, s); err != nil {
		return err
	}
	never := uint64(math.MaxUint64)
	dirtyPeriod := never
	if vm.cfg.dirtyRate > 0 {
		pagesPerSec := max(uint64(vm.cfg.dirtyRate)/vmm.PageSize, 1)
		dirtyPeriod = vm.freq / pagesPerSec
	}
	dirtyStart := vm.layout.dirtyFirst * vmm.PageSize
	const iopl3 = 3 << 12
	return setRegs(vm.vcpuFD, kvmRegs{
		RSI: headerPage * vmm.PageSize,
		R15: vm.ticks(vm.cfg.sampleInterval),
		R9:  dirtyPeriod,
		R10: dirtyStart, R11: vm.spec.MemoryBytes, R12: dirtyStart,
		R14:    vm.ticks(vm.cfg.exitInterval),
		RIP:    codePage * vmm.PageSize,
		RFLAGS: 2 | iopl3, // bit 1 is reserved-one; IOPL 3 lets CPL 3 use OUT
	})
}

// Pause stops the vCPU: it sets kvm_run.immediate_exit, kicks the vCPU's
// thread out of KVM_RUN with a signal, and waits until the goroutine has
// completed any pending port I/O and left.
func (vm *VM) Pause(ctx context.Context) error {
	const op = "pausing vm"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vmm.RequireState(op, vm.State(), vmm.StateRunning); err != nil {
		return err
	}
	vm.stopVCPU()
	vm.state.Store(int32(vmm.StatePaused))
	return nil
}

// Resume runs the vCPU from where it stopped, or from imported state.
func (vm *VM) Resume(ctx context.Context) error {
	const op = "resuming vm"
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vmm.RequireState(op, vm.State(), vmm.StatePaused, vmm.StateCreated); err != nil {
		return err
	}
	if vm.imported && vm.snapVCPU != nil {
		// The guest now runs on a new host: the imported samples become
		// the "before" side of the continuity measurement.
		vm.sampleMu.Lock()
		vm.epoch = vm.snapVCPU.epoch + 1
		vm.before = append([]ExitSample(nil), vm.snapVCPU.samples...)
		vm.first, vm.recentN = nil, 0
		vm.sampleMu.Unlock()
	}
	vm.snapVCPU, vm.snapClock, vm.imported = nil, nil, false
	vm.startVCPU()
	return nil
}

// Destroy stops the vCPU and releases the VM. It is idempotent.
func (vm *VM) Destroy() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	switch vm.State() {
	case vmm.StateDestroyed:
		return nil
	case vmm.StateRunning:
		vm.stopVCPU()
	}
	vm.memMu.Lock()
	vm.release()
	vm.memMu.Unlock()
	vm.state.Store(int32(vmm.StateDestroyed))
	return nil
}

// startVCPU launches the vCPU goroutine; vm.mu must be held.
func (vm *VM) startVCPU() {
	vm.stop.Store(false)
	vm.run[runImmediateExitOffset] = 0
	vm.sampleMu.Lock()
	vm.newRun = true
	vm.sampleMu.Unlock()
	vm.done, vm.halt = make(chan struct{}), make(chan struct{})
	started := make(chan struct{})
	go vm.runVCPU(vm.done, vm.halt, started)
	<-started
	vm.state.Store(int32(vmm.StateRunning))
}

// stopVCPU stops the vCPU goroutine; vm.mu must be held. The guest exits
// on its own every exit interval, so the kick only shortens the wait.
func (vm *VM) stopVCPU() {
	vm.stop.Store(true)
	close(vm.halt)
	vm.run[runImmediateExitOffset] = 1
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if tid := vm.tid.Load(); tid != 0 {
			// SIGURG is the Go runtime's own preemption signal: harmless
			// to any Go thread, and it makes KVM_RUN return EINTR.
			_ = unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
		}
		select {
		case <-vm.done:
			return
		case <-tick.C:
		}
	}
}

// runVCPU runs KVM_RUN on a locked OS thread until asked to stop or the
// guest faults. Throttled (SetThrottle), the thread sleeps after each
// vmm.ThrottleSlice of running, between two of the guest's exits.
func (vm *VM) runVCPU(done, halt, started chan struct{}) {
	defer close(done)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	vm.tid.Store(int32(unix.Gettid()))
	defer vm.tid.Store(0)
	close(started)
	sliceStart := time.Now()
	nap := time.NewTimer(0)
	<-nap.C
	for {
		if vm.stop.Load() {
			vm.completeIO()
			return
		}
		if p := int(vm.throttle.Load()); p == 0 {
			sliceStart = time.Now()
		} else if slice := time.Since(sliceStart); slice >= vmm.ThrottleSlice {
			// In proportion to what the slice ran: the guest exits only
			// every exit interval, which stretches it.
			nap.Reset(vmm.ThrottleSleep(p) * slice / vmm.ThrottleSlice)
			select {
			case <-halt:
				nap.Stop()
				continue
			case <-nap.C:
			}
			sliceStart = time.Now()
			// The pending OUT's bracket would span the sleep.
			vm.sampleMu.Lock()
			vm.newRun = true
			vm.sampleMu.Unlock()
		}
		_, err := ioctl(vm.vcpuFD, ioctlRun, 0)
		switch {
		case errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN):
			continue
		case err != nil:
			vm.setFault(fmt.Errorf("%w: KVM_RUN: %w", ErrGuestFault, err))
			return
		}
		reason := binary.LittleEndian.Uint32(vm.run[runExitReasonOffset:])
		switch reason {
		case exitIO:
			port := binary.LittleEndian.Uint16(vm.run[runIOPortOffset:])
			if port != exitPort || vm.run[runIODirectionOffset] != ioDirectionOut {
				vm.setFault(fmt.Errorf("%w: port I/O to %#x", ErrGuestFault, port))
				vm.completeIO()
				return
			}
			realtime := time.Now().UnixNano()
			vm.recordSample(ExitSample{
				GuestTSC: atomic.LoadUint64((*uint64)(unsafe.Pointer(&vm.mem[hdrExitPre]))),
				Realtime: realtime,
			}, atomic.LoadUint64((*uint64)(unsafe.Pointer(&vm.mem[hdrExitPost]))))
		case exitIntr:
		default:
			vm.setFault(fmt.Errorf("%w: exit reason %d (hardware reason %#x) at %s", ErrGuestFault, reason,
				binary.LittleEndian.Uint64(vm.run[runHardwareReasonOffset:]), exitName(reason)))
			return
		}
	}
}

func exitName(reason uint32) string {
	switch reason {
	case exitHLT:
		return "HLT"
	case exitShutdown:
		return "SHUTDOWN (triple fault)"
	case exitFailEntry:
		return "FAIL_ENTRY"
	case exitInternalError:
		return "INTERNAL_ERROR"
	}
	return "an unexpected exit"
}

// completeIO finishes a pending port I/O without running the guest: KVM
// completes an OUT only on the next KVM_RUN, and with immediate_exit set
// that run returns EINTR right after. Without it the exported RIP would
// still point at the OUT.
func (vm *VM) completeIO() {
	vm.run[runImmediateExitOffset] = 1
	if _, err := ioctl(vm.vcpuFD, ioctlRun, 0); err != nil && !errors.Is(err, unix.EINTR) {
		vm.setFault(fmt.Errorf("%w: completing port I/O: %w", ErrGuestFault, err))
	}
}

func (vm *VM) setFault(err error) { vm.fault.CompareAndSwap(nil, &err) }

// recordSample keeps an exit sample: in the ring of recent ones (which
// travels with a migration) and, for the first ContinuityWindow of an
// epoch, in first (the "after" side of a measurement). post is the TSC the
// guest read after its previous OUT completed, which closes the previous
// sample's bracket if it was taken in the same run.
func (vm *VM) recordSample(s ExitSample, post uint64) {
	vm.sampleMu.Lock()
	defer vm.sampleMu.Unlock()
	if vm.recentN > 0 && !vm.newRun {
		prev := &vm.recent[(vm.recentN-1)%ContinuityWindow]
		if post > prev.GuestTSC && post <= s.GuestTSC {
			prev.RoundTrip = post - prev.GuestTSC
			if len(vm.first) == vm.recentN {
				vm.first[len(vm.first)-1].RoundTrip = prev.RoundTrip
			}
		}
	}
	vm.newRun = false
	vm.recent[vm.recentN%ContinuityWindow] = s
	vm.recentN++
	if len(vm.first) < ContinuityWindow {
		vm.first = append(vm.first, s)
	}
}

// recentSamples returns the latest samples of this epoch, oldest first.
func (vm *VM) recentSamples() []ExitSample {
	vm.sampleMu.Lock()
	defer vm.sampleMu.Unlock()
	n := min(vm.recentN, ContinuityWindow)
	out := make([]ExitSample, 0, n)
	for i := vm.recentN - n; i < vm.recentN; i++ {
		out = append(out, vm.recent[i%ContinuityWindow])
	}
	return out
}

func (vm *VM) resetSamples() {
	vm.sampleMu.Lock()
	defer vm.sampleMu.Unlock()
	vm.epoch, vm.recentN, vm.first, vm.before = 0, 0, nil, nil
}

// MeasureContinuity compares the guest's TSC jump across the last
// migration into this VM with the wall-clock time that passed, from the
// source's last exit samples and this VM's first ones (see MeasureJump).
// It fails with ErrNoSamples before the VM has been migrated in and run.
func (vm *VM) MeasureContinuity() (ContinuityMeasurement, error) {
	vm.sampleMu.Lock()
	before, after := vm.before, append([]ExitSample(nil), vm.first...)
	vm.sampleMu.Unlock()
	m, err := MeasureJump(before, after, vm.freq)
	m.TSCOffsetHonoured = vm.TSCOffsetHonoured()
	return m, err
}

// ExitSamples returns how many exit samples this VM has taken since it
// booted or was migrated in.
func (vm *VM) ExitSamples() int {
	vm.sampleMu.Lock()
	defer vm.sampleMu.Unlock()
	return vm.recentN
}

// MeasureContinuity is (*VM).MeasureContinuity for a vmm.VM, failing with
// ErrNotKVM for VMs of other backends.
func MeasureContinuity(vm vmm.VM) (ContinuityMeasurement, error) {
	k, ok := vm.(*VM)
	if !ok {
		return ContinuityMeasurement{}, fmt.Errorf("measuring continuity: %w: %T", ErrNotKVM, vm)
	}
	return k.MeasureContinuity()
}

// TSCOffsetHonoured is (*VM).TSCOffsetHonoured for a vmm.VM, failing with
// ErrNotKVM for VMs of other backends.
func TSCOffsetHonoured(vm vmm.VM) (bool, error) {
	k, ok := vm.(*VM)
	if !ok {
		return false, fmt.Errorf("%w: %T", ErrNotKVM, vm)
	}
	return k.TSCOffsetHonoured(), nil
}

// AwaitContinuity waits until vm, migrated in and running, has taken
// ContinuityWindow exit samples (or ctx ends, or the guest faults), then
// measures its continuity; check Sufficient on the result. It fails with
// ErrNotKVM for VMs of other backends.
func AwaitContinuity(ctx context.Context, vm vmm.VM) (ContinuityMeasurement, error) {
	k, ok := vm.(*VM)
	if !ok {
		return ContinuityMeasurement{}, fmt.Errorf("measuring continuity: %w: %T", ErrNotKVM, vm)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for k.ExitSamples() < ContinuityWindow && k.State() == vmm.StateRunning && k.Fault() == nil {
		select {
		case <-ctx.Done():
			m, err := k.MeasureContinuity()
			if err != nil {
				return m, fmt.Errorf("%w (waiting: %w)", err, ctx.Err())
			}
			return m, nil
		case <-tick.C:
		}
	}
	if err := k.Fault(); err != nil {
		return ContinuityMeasurement{}, fmt.Errorf("measuring continuity: %w", err)
	}
	return k.MeasureContinuity()
}

// MeasureTSCContinuity implements vmm.ContinuityMeter: it waits for the
// migrated guest's exit samples and measures its TSC continuity.
func (vm *VM) MeasureTSCContinuity(ctx context.Context) (vmm.TSCContinuity, error) {
	return measureTSCContinuity(ctx, vm)
}

var (
	_ vmm.ContinuityMeter = (*VM)(nil)
	_ vmm.Throttler       = (*VM)(nil)
)

// SetThrottle makes the vCPU thread sleep percent % of the time, so the
// guest runs, and dirties memory, that much slower; 0 runs it at full
// speed (vmm.Throttler). It holds across Pause and Resume.
func (vm *VM) SetThrottle(percent int) error {
	const op = "throttling vm"
	if err := vmm.CheckThrottle(percent); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if vm.State() == vmm.StateDestroyed {
		return fmt.Errorf("%s: %w", op, vmm.ErrDestroyed)
	}
	vm.throttle.Store(int32(percent))
	return nil
}

// Throttle returns the throttle SetThrottle set, in percent.
func (vm *VM) Throttle() int { return int(vm.throttle.Load()) }
