package kvm

import (
	"bytes"
	"errors"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
)

func sampleVCPU() vcpuState {
	s := vcpuState{
		regs:      kvmRegs{RAX: 1, RIP: codePage * vmm.PageSize, RFLAGS: 0x3002},
		tscOffset: 0xfff0_0000_0000_0000,
		epoch:     2,
		samples:   []ExitSample{{GuestTSC: 10, Realtime: 20, RoundTrip: 30}, {GuestTSC: 40, Realtime: -50}},
	}
	s.sregs.CS = kvmSegment{Selector: 0x1b, Type: 0xb, Present: 1, DPL: 3, L: 1}
	s.sregs.EFER = 0x500
	s.msrs = make([]uint64, len(vcpuMSRs))
	for i := range s.msrs {
		s.msrs[i] = uint64(i) * 77
	}
	return s
}

func TestDeviceRoundTrip(t *testing.T) {
	states := encodeDevices(sampleVCPU(), clockState{clock: 123, flags: kvmClockRealtime | kvmClockHostTSC, realtime: 456, hostTSC: 789})
	set, err := decodeDevices(states)
	if err != nil {
		t.Fatal(err)
	}
	again := encodeDevices(*set.vcpu, *set.clock)
	for i := range states {
		if !bytes.Equal(states[i].Data, again[i].Data) {
			t.Errorf("%s: re-encoding changed the bytes", states[i].Name)
		}
	}
	if got := len(states[0].Data); got != 144+312+4+12*len(vcpuMSRs)+16+24*2 {
		t.Errorf("vcpu state is %d bytes", got)
	}
}

func TestDecodeDevicesRefuses(t *testing.T) {
	good := encodeDevices(sampleVCPU(), clockState{flags: kvmClockRealtime})
	tests := []struct {
		name   string
		modify func([]vmm.DeviceState) []vmm.DeviceState
		want   error
	}{
		{"unknown device", func(s []vmm.DeviceState) []vmm.DeviceState { s[0].Name = "vcpu1"; return s }, vmm.ErrUnknownDevice},
		{"wrong kind", func(s []vmm.DeviceState) []vmm.DeviceState { s[1].Kind = KindVCPU; return s }, vmm.ErrUnknownDevice},
		{"newer version", func(s []vmm.DeviceState) []vmm.DeviceState { s[0].Version = 2; return s }, vmm.ErrDeviceVersion},
		{"duplicate", func(s []vmm.DeviceState) []vmm.DeviceState { return append(s, s[1]) }, vmm.ErrDeviceData},
		{"truncated vcpu", func(s []vmm.DeviceState) []vmm.DeviceState { s[0].Data = s[0].Data[:300]; return s }, vmm.ErrDeviceData},
		{"trailing byte", func(s []vmm.DeviceState) []vmm.DeviceState {
			s[0].Data = append(s[0].Data, 0)
			return s
		}, vmm.ErrDeviceData},
		{"unknown MSR", func(s []vmm.DeviceState) []vmm.DeviceState { s[0].Data[144+312+4] = 0x11; return s }, vmm.ErrDeviceData},
		{"too many samples", func(s []vmm.DeviceState) []vmm.DeviceState {
			v := sampleVCPU()
			v.samples = make([]ExitSample, ContinuityWindow+1)
			s[0].Data = encodeVCPU(v)
			return s
		}, vmm.ErrDeviceData},
		{"clock flags", func(s []vmm.DeviceState) []vmm.DeviceState { s[1].Data[8] = 0x80; return s }, vmm.ErrDeviceData},
		{"clock size", func(s []vmm.DeviceState) []vmm.DeviceState { s[1].Data = s[1].Data[:5]; return s }, vmm.ErrDeviceData},
	}
	for _, tc := range tests {
		states := make([]vmm.DeviceState, len(good))
		for i, s := range good {
			states[i] = s
			states[i].Data = bytes.Clone(s.Data)
		}
		if _, err := decodeDevices(tc.modify(states)); !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzDecodeDevices checks that any bytes either decode to a state that
// re-encodes to the same bytes or are refused with ErrDeviceData.
func FuzzDecodeDevices(f *testing.F) {
	good := encodeDevices(sampleVCPU(), clockState{clock: 1, flags: kvmClockRealtime})
	f.Add(good[0].Data, good[1].Data)
	f.Add([]byte{}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, vcpu, clock []byte) {
		states := []vmm.DeviceState{
			{Name: VCPUName, Kind: KindVCPU, Version: vcpuVersion, Data: vcpu},
			{Name: ClockName, Kind: KindClock, Version: clockVersion, Data: clock},
		}
		set, err := decodeDevices(states)
		if err != nil {
			if !errors.Is(err, vmm.ErrDeviceData) {
				t.Fatalf("refused without ErrDeviceData: %v", err)
			}
			return
		}
		again := encodeDevices(*set.vcpu, *set.clock)
		if !bytes.Equal(again[0].Data, vcpu) || !bytes.Equal(again[1].Data, clock) {
			t.Fatalf("decoded state re-encodes differently")
		}
	})
}
