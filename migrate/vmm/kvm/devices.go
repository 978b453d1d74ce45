package kvm

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// Device names, kinds and state versions.
const (
	VCPUName     = "vcpu0"
	KindVCPU     = "vcpu"
	ClockName    = "kvmclock"
	KindClock    = "clock"
	vcpuVersion  = 1
	clockVersion = 1
)

// deviceSpecs lists a kvm VM's devices: its one vCPU and kvmclock.
func deviceSpecs() []vmm.DeviceSpec {
	return []vmm.DeviceSpec{
		{Name: VCPUName, Kind: KindVCPU, Version: vcpuVersion},
		{Name: ClockName, Kind: KindClock, Version: clockVersion},
	}
}

// The MSRs the vcpu device carries. IA32_TSC travels for the record only:
// the guest TSC is installed from the time data, never from device state.
var vcpuMSRs = []uint32{
	msrIA32TSC,
	0xc000_0081, // STAR
	0xc000_0082, // LSTAR
	0xc000_0083, // CSTAR
	0xc000_0084, // SFMASK
	0xc000_0102, // KERNEL_GS_BASE
}

const msrIA32TSC = 0x10

// vcpuState is version 1 of the vcpu device: the registers, special
// registers and MSRs as KVM reports them, the vCPU's TSC offset, and the
// exit samples of the host it last ran on (the source's, for measuring
// continuity on the destination).
type vcpuState struct {
	regs      kvmRegs
	sregs     kvmSregs
	msrs      []uint64 // values of vcpuMSRs, in order
	tscOffset uint64
	// epoch counts the hosts the guest ran on; samples were taken in it.
	epoch   uint32
	samples []ExitSample
}

// encodeVCPU writes version 1: kvm_regs (144 bytes), kvm_sregs (312), the
// MSR count u32 and (index u32, value u64) pairs, TSC offset u64, epoch
// u32, sample count u32 and (guest TSC u64, realtime i64, round trip u64)
// triples; all
// little-endian.
func encodeVCPU(s vcpuState) []byte {
	b := make([]byte, 0, 144+312+4+12*len(s.msrs)+16+24*len(s.samples))
	b, _ = binary.Append(b, binary.LittleEndian, s.regs)
	b, _ = binary.Append(b, binary.LittleEndian, s.sregs)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.msrs)))
	for i, v := range s.msrs {
		b = binary.LittleEndian.AppendUint32(b, vcpuMSRs[i])
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	b = binary.LittleEndian.AppendUint64(b, s.tscOffset)
	b = binary.LittleEndian.AppendUint32(b, s.epoch)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.samples)))
	for _, x := range s.samples {
		b = binary.LittleEndian.AppendUint64(b, x.GuestTSC)
		b = binary.LittleEndian.AppendUint64(b, uint64(x.Realtime))
		b = binary.LittleEndian.AppendUint64(b, x.RoundTrip)
	}
	return b
}

// reader consumes little-endian fields, remembering the first shortfall.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b)-r.off < n {
		r.err = fmt.Errorf("%s at byte %d: need %d bytes, %d left", what, r.off, n, len(r.b)-r.off)
		return nil
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return out
}

func (r *reader) u32(what string) uint32 {
	if b := r.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if b := r.take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (r *reader) structure(v any, size int, what string) {
	if b := r.take(size, what); b != nil {
		if _, err := binary.Decode(b, binary.LittleEndian, v); err != nil {
			r.err = fmt.Errorf("%s: %w", what, err)
		}
	}
}

func (r *reader) finish() error {
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("%d trailing bytes after byte %d", len(r.b)-r.off, r.off)
	}
	return r.err
}

func decodeVCPU(b []byte) (vcpuState, error) {
	var s vcpuState
	r := reader{b: b}
	r.structure(&s.regs, 144, "kvm_regs")
	r.structure(&s.sregs, 312, "kvm_sregs")
	if n := r.u32("MSR count"); r.err == nil && int(n) != len(vcpuMSRs) {
		return s, fmt.Errorf("%d MSRs, want %d", n, len(vcpuMSRs))
	}
	for i := 0; i < len(vcpuMSRs) && r.err == nil; i++ {
		if idx := r.u32("MSR index"); r.err == nil && idx != vcpuMSRs[i] {
			return s, fmt.Errorf("MSR %d is %#x, want %#x", i, idx, vcpuMSRs[i])
		}
		s.msrs = append(s.msrs, r.u64("MSR value"))
	}
	s.tscOffset = r.u64("TSC offset")
	s.epoch = r.u32("epoch")
	n := r.u32("sample count")
	if r.err == nil && n > ContinuityWindow {
		return s, fmt.Errorf("%d exit samples, at most %d", n, ContinuityWindow)
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		tsc := r.u64("sample TSC")
		realtime := int64(r.u64("sample realtime"))
		s.samples = append(s.samples, ExitSample{GuestTSC: tsc, Realtime: realtime, RoundTrip: r.u64("sample round trip")})
	}
	if err := r.finish(); err != nil {
		return s, err
	}
	return s, nil
}

// clockState is version 1 of the kvmclock device: KVM_GET_CLOCK's
// kvmclock ns, flags, realtime ns and host TSC, as read at the source.
type clockState struct {
	clock    uint64
	flags    uint32
	realtime uint64
	hostTSC  uint64
}

const (
	clockStateSize    = 8 + 4 + 8 + 8
	clockKnownFlags   = kvmClockTSCStable | kvmClockRealtime | kvmClockHostTSC
	kvmClockTSCStable = 2
	kvmClockRealtime  = 4
	kvmClockHostTSC   = 8
)

func encodeClock(c clockState) []byte {
	b := make([]byte, 0, clockStateSize)
	b = binary.LittleEndian.AppendUint64(b, c.clock)
	b = binary.LittleEndian.AppendUint32(b, c.flags)
	b = binary.LittleEndian.AppendUint64(b, c.realtime)
	return binary.LittleEndian.AppendUint64(b, c.hostTSC)
}

func decodeClock(b []byte) (clockState, error) {
	if len(b) != clockStateSize {
		return clockState{}, fmt.Errorf("%d bytes, want %d", len(b), clockStateSize)
	}
	c := clockState{
		clock:    binary.LittleEndian.Uint64(b),
		flags:    binary.LittleEndian.Uint32(b[8:]),
		realtime: binary.LittleEndian.Uint64(b[12:]),
		hostTSC:  binary.LittleEndian.Uint64(b[20:]),
	}
	if c.flags&^clockKnownFlags != 0 {
		return clockState{}, fmt.Errorf("unknown kvmclock flags %#x", c.flags)
	}
	return c, nil
}

// deviceSet is what ImportDevices decoded: nil for a device not imported.
type deviceSet struct {
	vcpu  *vcpuState
	clock *clockState
}

// decodeDevices checks and decodes states against this backend's devices,
// all before anything is installed, so a refused import changes nothing.
func decodeDevices(states []vmm.DeviceState) (deviceSet, error) {
	var set deviceSet
	specs := deviceSpecs()
	seen := make(map[string]bool, len(states))
	for _, s := range states {
		if seen[s.Name] {
			return set, fmt.Errorf("%w: device %q appears twice", vmm.ErrDeviceData, s.Name)
		}
		seen[s.Name] = true
		i := slices.IndexFunc(specs, func(d vmm.DeviceSpec) bool { return d.Name == s.Name })
		if i < 0 {
			return set, fmt.Errorf("%w: %q (kind %q)", vmm.ErrUnknownDevice, s.Name, s.Kind)
		}
		want := specs[i]
		if s.Kind != want.Kind {
			return set, fmt.Errorf("%w: %q is a %s here, the state is for a %s", vmm.ErrUnknownDevice, s.Name, want.Kind, s.Kind)
		}
		if s.Version != want.Version {
			return set, fmt.Errorf("%w: %s %q version %d, this VM reads version %d",
				vmm.ErrDeviceVersion, s.Kind, s.Name, s.Version, want.Version)
		}
		var err error
		switch s.Kind {
		case KindVCPU:
			var v vcpuState
			v, err = decodeVCPU(s.Data)
			set.vcpu = &v
		case KindClock:
			var c clockState
			c, err = decodeClock(s.Data)
			set.clock = &c
		}
		if err != nil {
			return deviceSet{}, fmt.Errorf("%w: %s %q: %w", vmm.ErrDeviceData, s.Kind, s.Name, err)
		}
	}
	return set, nil
}

// encodeDevices is ExportDevices' encoding of a snapshot.
func encodeDevices(v vcpuState, c clockState) []vmm.DeviceState {
	return []vmm.DeviceState{
		{Name: VCPUName, Kind: KindVCPU, Version: vcpuVersion, Data: encodeVCPU(v)},
		{Name: ClockName, Kind: KindClock, Version: clockVersion, Data: encodeClock(c)},
	}
}
