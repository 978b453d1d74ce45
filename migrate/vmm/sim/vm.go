package sim

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/migtrace/migtrace/migrate/vmm"
)

var (
	_ vmm.Backend   = (*Backend)(nil)
	_ vmm.VM        = (*VM)(nil)
	_ vmm.Throttler = (*VM)(nil)
)

// VM is a simulated virtual machine; it implements vmm.VM. Its methods are
// safe for concurrent use.
type VM struct {
	cfg   config
	spec  vmm.Spec
	clock vmm.Clock

	// mu serialises lifecycle changes, time-data writes and device state
	// import and export. vCPUs never take it, so Pause can wait for them
	// while holding it.
	mu    sync.Mutex
	state atomic.Int32 // vmm.State

	// memMu guards mem, which is nil once destroyed; memory accessors
	// hold it shared for a whole call.
	memMu sync.RWMutex
	mem   *guestMemory
	// touched records host writes before Boot, which must then zero RAM.
	touched atomic.Bool

	time atomic.Pointer[timeBase]

	// ringMu orders TSC samples: a vCPU reads the TSC and appends it as one
	// step, so the ring is in time order across vCPUs.
	ringMu sync.Mutex

	// devMu guards the timer and the serial console.
	devMu  sync.Mutex
	timer  timerDevice
	serial serialDevice

	vcpus []*vcpu
	stop  chan struct{}
	wg    sync.WaitGroup

	// throttle is the share of time, in percent, the vCPUs sleep.
	throttle atomic.Int32
}

func newVM(cfg config, spec vmm.Spec) (*VM, error) {
	mem, err := newGuestMemory(spec.MemoryBytes)
	if err != nil {
		return nil, err
	}
	vm := &VM{
		cfg:   cfg,
		spec:  spec,
		clock: cfg.clock,
		mem:   mem,
		vcpus: make([]*vcpu, spec.VCPUs),
	}
	vm.state.Store(int32(vmm.StateCreated))
	// Until Boot or WriteTimeData the guest TSC is the scaled host clock
	// and the guest "booted" with the host.
	vm.time.Store(&timeBase{freq: cfg.tscFreq})
	perVCPU := cfg.dirtyRate / int64(spec.VCPUs)
	for i := range vm.vcpus {
		vm.vcpus[i] = &vcpu{id: uint32(i), st: newWorkload(uint32(i), uint64(perVCPU))}
	}
	return vm, nil
}

// Spec returns the VM's spec.
func (vm *VM) Spec() vmm.Spec {
	s := vm.spec
	s.Devices = append([]vmm.DeviceSpec(nil), vm.spec.Devices...)
	return s
}

// State returns the lifecycle state.
func (vm *VM) State() vmm.State { return vmm.State(vm.state.Load()) }

// requireStopped refuses operations on a running or destroyed VM; vm.mu
// must be held.
func (vm *VM) requireStopped(op string) error {
	return vmm.RequireState(op, vm.State(), vmm.StateCreated, vmm.StatePaused)
}

// Boot starts a fresh guest: zeroed memory, boot_hrtime = now, the guest
// TSC at 0, the timer armed one period ahead and the vCPUs running.
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
	now, _ := vm.clock.Now()
	freq := vm.cfg.tscFreq
	vm.time.Store(&timeBase{freq: freq, offset: -scaleToTicks(now, freq), bootHrtime: now})

	vm.memMu.Lock()
	if vm.touched.Swap(false) {
		clear(vm.mem.ram)
		vm.mem.clearDirty()
	}
	initRing(vm.mem)
	vm.memMu.Unlock()

	vm.devMu.Lock()
	vm.timer = timerDevice{armed: true, period: vm.cfg.timerPeriod, deadline: now + vm.cfg.timerPeriod}
	vm.serial = serialDevice{}
	vm.devMu.Unlock()

	perVCPU := uint64(vm.cfg.dirtyRate / int64(len(vm.vcpus)))
	for _, c := range vm.vcpus {
		c.mu.Lock()
		c.st = newWorkload(c.id, perVCPU)
		c.mu.Unlock()
	}
	vm.startVCPUs()
	return nil
}

// Pause stops the vCPUs between two page writes and returns once none of
// them touches memory, time data or devices.
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
	// A vCPU stops within one page write, so the wait is bounded and is
	// not abandoned on ctx: returning early would leave vCPUs running in a
	// VM reported as not paused.
	vm.stopVCPUs()
	vm.state.Store(int32(vmm.StatePaused))
	return nil
}

// Resume starts the vCPUs of a paused VM, or of a created one that received
// an incoming migration; they continue the workload their state describes.
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
	vm.startVCPUs()
	return nil
}

// Destroy stops the vCPUs and releases guest memory. It is idempotent.
func (vm *VM) Destroy() error {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	switch vm.State() {
	case vmm.StateDestroyed:
		return nil
	case vmm.StateRunning:
		vm.stopVCPUs()
	}
	vm.memMu.Lock()
	vm.mem = nil
	vm.memMu.Unlock()
	vm.state.Store(int32(vmm.StateDestroyed))
	return nil
}

// startVCPUs launches one goroutine per vCPU; vm.mu must be held.
func (vm *VM) startVCPUs() {
	vm.stop = make(chan struct{})
	vm.wg.Add(len(vm.vcpus))
	for _, c := range vm.vcpus {
		go vm.runVCPU(c, vm.stop)
	}
	vm.state.Store(int32(vmm.StateRunning))
}

// stopVCPUs signals the vCPUs and waits for them; vm.mu must be held.
func (vm *VM) stopVCPUs() {
	close(vm.stop)
	vm.wg.Wait()
}

// SetThrottle makes each vCPU sleep percent % of the time, and its guest
// dirty memory that much slower; 0 runs it at full speed (vmm.Throttler).
// It holds across Pause and Resume.
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
