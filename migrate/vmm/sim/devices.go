package sim

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// Device kinds and names. vCPU i is named "vcpu<i>".
const (
	KindVCPU   = "vcpu"
	KindTimer  = "timer"
	KindSerial = "serial"
	TimerName  = "timer0"
	SerialName = "com1"
)

// The state format versions this package writes and reads.
const (
	vcpuStateVersion   = 1
	timerStateVersion  = 1
	serialStateVersion = 1
)

// Encoded sizes of the fixed-size states.
const (
	vcpuStateSize  = 4 + 5*8
	timerStateSize = 4 + 3*8
	serialHdrSize  = 8 + 4
)

// SerialHistoryBytes is how much console output a VM keeps, and migrates.
const SerialHistoryBytes = 64 << 10

// timerDevice is a guest timer. Its deadline is host hrtime, but it is
// exported relative to boot_hrtime so it keeps its guest-relative meaning
// on a host whose clock reads differently.
type timerDevice struct {
	armed    bool
	deadline int64 // host hrtime
	period   int64 // ns
	fired    uint64
}

// serialDevice is a console whose output history is kept and migrated.
type serialDevice struct {
	history []byte // the last SerialHistoryBytes bytes written
	total   uint64 // bytes ever written
}

func (s *serialDevice) write(b []byte) {
	s.total += uint64(len(b))
	s.history = append(s.history, b...)
	if over := len(s.history) - SerialHistoryBytes; over > 0 {
		s.history = append(s.history[:0], s.history[over:]...)
	}
}

func vcpuName(i int) string { return KindVCPU + strconv.Itoa(i) }

// deviceSpecs lists a VM's devices: its vCPUs, the timer and the console.
func deviceSpecs(vcpus int) []vmm.DeviceSpec {
	specs := make([]vmm.DeviceSpec, 0, vcpus+2)
	for i := range vcpus {
		specs = append(specs, vmm.DeviceSpec{Name: vcpuName(i), Kind: KindVCPU, Version: vcpuStateVersion})
	}
	return append(specs,
		vmm.DeviceSpec{Name: TimerName, Kind: KindTimer, Version: timerStateVersion},
		vmm.DeviceSpec{Name: SerialName, Kind: KindSerial, Version: serialStateVersion})
}

// SerialOutput returns a copy of the console's output history.
func (vm *VM) SerialOutput() []byte {
	vm.devMu.Lock()
	defer vm.devMu.Unlock()
	return append([]byte(nil), vm.serial.history...)
}

// TimerState is the timer as the guest sees it.
type TimerState struct {
	Armed bool
	// Deadline is the host hrtime at which the timer fires.
	Deadline int64
	// SinceBoot is Deadline − boot_hrtime: what migration preserves.
	SinceBoot int64
	Period    int64
	Fired     uint64
}

// Timer returns the timer's state.
func (vm *VM) Timer() TimerState {
	boot := vm.time.Load().bootHrtime
	vm.devMu.Lock()
	defer vm.devMu.Unlock()
	t := vm.timer
	return TimerState{Armed: t.armed, Deadline: t.deadline, SinceBoot: t.deadline - boot, Period: t.period, Fired: t.fired}
}

// ExportDevices returns the state of every vCPU, the timer and the console.
// The VM must not be running.
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
	states := make([]vmm.DeviceState, 0, len(vm.vcpus)+2)
	for i, c := range vm.vcpus {
		c.mu.Lock()
		data := encodeVCPU(c.st)
		c.mu.Unlock()
		states = append(states, vmm.DeviceState{Name: vcpuName(i), Kind: KindVCPU, Version: vcpuStateVersion, Data: data})
	}
	boot := vm.time.Load().bootHrtime
	vm.devMu.Lock()
	timer := encodeTimer(vm.timer, boot)
	serial := encodeSerial(vm.serial)
	vm.devMu.Unlock()
	return append(states,
		vmm.DeviceState{Name: TimerName, Kind: KindTimer, Version: timerStateVersion, Data: timer},
		vmm.DeviceState{Name: SerialName, Kind: KindSerial, Version: serialStateVersion, Data: serial}), nil
}

// ImportDevices installs device state exported by another sim VM, after
// WriteTimeData: the timer's deadline is rebased on the boot_hrtime now in
// force. Every state is decoded before any is installed, so a refused
// import changes nothing. Devices absent from states keep their state.
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
	var (
		vcpus  = make(map[int]workload)
		timer  *timerState
		serial *serialDevice
		seen   = make(map[string]bool, len(states))
	)
	for _, s := range states {
		if seen[s.Name] {
			return fmt.Errorf("%s: %w: device %q appears twice", op, vmm.ErrDeviceData, s.Name)
		}
		seen[s.Name] = true
		want, ok := vm.deviceSpec(s.Name)
		if !ok {
			return fmt.Errorf("%s: %w: %q (kind %q)", op, vmm.ErrUnknownDevice, s.Name, s.Kind)
		}
		if s.Kind != want.Kind {
			return fmt.Errorf("%s: %w: %q is a %s here, the state is for a %s", op, vmm.ErrUnknownDevice, s.Name, want.Kind, s.Kind)
		}
		if s.Version != want.Version {
			return fmt.Errorf("%s: %w: %s %q version %d, this VM reads version %d",
				op, vmm.ErrDeviceVersion, s.Kind, s.Name, s.Version, want.Version)
		}
		var err error
		switch s.Kind {
		case KindVCPU:
			id, _ := strconv.Atoi(strings.TrimPrefix(s.Name, KindVCPU))
			var w workload
			if w, err = decodeVCPU(s.Data); err == nil && int(w.id) != id {
				err = fmt.Errorf("state carries vcpu id %d", w.id)
			}
			vcpus[id] = w
		case KindTimer:
			var t timerState
			t, err = decodeTimer(s.Data)
			timer = &t
		case KindSerial:
			var d serialDevice
			d, err = decodeSerial(s.Data)
			serial = &d
		}
		if err != nil {
			return fmt.Errorf("%s: %w: %s %q: %w", op, vmm.ErrDeviceData, s.Kind, s.Name, err)
		}
	}

	for id, w := range vcpus {
		c := vm.vcpus[id]
		c.mu.Lock()
		c.st = w
		c.mu.Unlock()
	}
	boot := vm.time.Load().bootHrtime
	vm.devMu.Lock()
	defer vm.devMu.Unlock()
	if timer != nil {
		vm.timer = timerDevice{
			armed:    timer.armed,
			deadline: boot + timer.sinceBoot,
			period:   timer.period,
			fired:    timer.fired,
		}
	}
	if serial != nil {
		vm.serial = *serial
	}
	return nil
}

func (vm *VM) deviceSpec(name string) (vmm.DeviceSpec, bool) {
	for _, d := range vm.spec.Devices {
		if d.Name == name {
			return d, true
		}
	}
	return vmm.DeviceSpec{}, false
}

// encodeVCPU writes version 1 of a vCPU's state: id u32, then rate, seq,
// rng, pages and samples as u64, little-endian.
func encodeVCPU(w workload) []byte {
	b := make([]byte, 0, vcpuStateSize)
	b = binary.LittleEndian.AppendUint32(b, w.id)
	for _, v := range [...]uint64{w.rate, w.seq, w.rng, w.pages, w.samples} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

func decodeVCPU(b []byte) (workload, error) {
	if len(b) != vcpuStateSize {
		return workload{}, fmt.Errorf("%d bytes, want %d", len(b), vcpuStateSize)
	}
	w := workload{
		id:      binary.LittleEndian.Uint32(b),
		rate:    binary.LittleEndian.Uint64(b[4:]),
		seq:     binary.LittleEndian.Uint64(b[12:]),
		rng:     binary.LittleEndian.Uint64(b[20:]),
		pages:   binary.LittleEndian.Uint64(b[28:]),
		samples: binary.LittleEndian.Uint64(b[36:]),
	}
	if w.rate > math.MaxInt64 {
		return workload{}, fmt.Errorf("dirty rate %d bytes/s out of range", w.rate)
	}
	return w, nil
}

// timerState is the timer as exported: its deadline relative to boot.
type timerState struct {
	armed     bool
	sinceBoot int64
	period    int64
	fired     uint64
}

// encodeTimer writes version 1 of the timer's state: flags u32 (bit 0:
// armed), deadline − boot_hrtime i64, period i64, fired u64.
func encodeTimer(t timerDevice, bootHrtime int64) []byte {
	var flags uint32
	if t.armed {
		flags |= 1
	}
	b := make([]byte, 0, timerStateSize)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = binary.LittleEndian.AppendUint64(b, uint64(t.deadline-bootHrtime))
	b = binary.LittleEndian.AppendUint64(b, uint64(t.period))
	return binary.LittleEndian.AppendUint64(b, t.fired)
}

func decodeTimer(b []byte) (timerState, error) {
	if len(b) != timerStateSize {
		return timerState{}, fmt.Errorf("%d bytes, want %d", len(b), timerStateSize)
	}
	flags := binary.LittleEndian.Uint32(b)
	if flags&^1 != 0 {
		return timerState{}, fmt.Errorf("unknown flags %#x", flags)
	}
	t := timerState{
		armed:     flags&1 != 0,
		sinceBoot: int64(binary.LittleEndian.Uint64(b[4:])),
		period:    int64(binary.LittleEndian.Uint64(b[12:])),
		fired:     binary.LittleEndian.Uint64(b[20:]),
	}
	if t.armed && t.period <= 0 {
		return timerState{}, fmt.Errorf("armed with period %d ns", t.period)
	}
	return t, nil
}

// encodeSerial writes version 1 of the console's state: total bytes
// written u64, history length u32, history.
func encodeSerial(s serialDevice) []byte {
	b := make([]byte, 0, serialHdrSize+len(s.history))
	b = binary.LittleEndian.AppendUint64(b, s.total)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.history)))
	return append(b, s.history...)
}

func decodeSerial(b []byte) (serialDevice, error) {
	if len(b) < serialHdrSize {
		return serialDevice{}, fmt.Errorf("%d bytes, shorter than the %d-byte header", len(b), serialHdrSize)
	}
	total := binary.LittleEndian.Uint64(b)
	n := binary.LittleEndian.Uint32(b[8:])
	switch {
	case n > SerialHistoryBytes:
		return serialDevice{}, fmt.Errorf("history of %d bytes exceeds %d", n, SerialHistoryBytes)
	case uint64(n) > total:
		return serialDevice{}, fmt.Errorf("history of %d bytes exceeds the %d bytes ever written", n, total)
	case len(b)-serialHdrSize != int(n):
		return serialDevice{}, fmt.Errorf("history length %d but %d bytes follow the header", n, len(b)-serialHdrSize)
	}
	return serialDevice{total: total, history: append([]byte(nil), b[serialHdrSize:]...)}, nil
}
