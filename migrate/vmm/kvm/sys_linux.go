//go:build linux && amd64

package kvm

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctl request numbers, from /usr/include/linux/kvm.h (x86-64), checked
// against the C headers in the feasibility probe.
const (
	ioctlGetAPIVersion      = 0xAE00
	ioctlCreateVM           = 0xAE01
	ioctlCheckExtension     = 0xAE03
	ioctlGetVCPUMmapSize    = 0xAE04
	ioctlGetSupportedCPUID  = 0xC008AE05
	ioctlSetCPUID2          = 0x4008AE90
	ioctlCreateVCPU         = 0xAE41
	ioctlGetDirtyLog        = 0x4010AE42
	ioctlSetUserMemRegion   = 0x4020AE46
	ioctlSetClock           = 0x4030AE7B
	ioctlGetClock           = 0x8030AE7C
	ioctlRun                = 0xAE80
	ioctlGetRegs            = 0x8090AE81
	ioctlSetRegs            = 0x4090AE82
	ioctlGetSregs           = 0x8138AE83
	ioctlSetSregs           = 0x4138AE84
	ioctlGetMSRs            = 0xC008AE88
	ioctlSetMSRs            = 0x4008AE89
	ioctlGetTSCKHz          = 0xAEA3
	ioctlSetDeviceAttr      = 0x4018AEE1
	ioctlGetDeviceAttr      = 0x4018AEE2
	ioctlHasDeviceAttr      = 0x4018AEE3
	kvmAPIVersion           = 12
	kvmMemLogDirtyPages     = 1
	kvmVCPUTSCCtrl          = 0 // attribute group KVM_VCPU_TSC_CTRL
	kvmVCPUTSCOffset        = 0 // attribute KVM_VCPU_TSC_OFFSET
	capAdjustClock          = 39
	capVCPUAttributes       = 127
	capImmediateExit        = 136
	capGetTSCKHz            = 61
	exitIO                  = 2
	exitHLT                 = 5
	exitShutdown            = 8
	exitFailEntry           = 9
	exitIntr                = 10
	exitInternalError       = 17
	runImmediateExitOffset  = 1
	runExitReasonOffset     = 8
	runIODirectionOffset    = 32
	runIOPortOffset         = 34
	ioDirectionOut          = 1
	runHardwareReasonOffset = 32
)

// kvmMemoryRegion mirrors struct kvm_userspace_memory_region (32 bytes).
type kvmMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

// kvmDirtyLog mirrors struct kvm_dirty_log (16 bytes).
type kvmDirtyLog struct {
	Slot   uint32
	Pad    uint32
	Bitmap uintptr
}

// kvmDeviceAttr mirrors struct kvm_device_attr (24 bytes).
type kvmDeviceAttr struct {
	Flags uint32
	Group uint32
	Attr  uint64
	Addr  uintptr
}

// Compile-time checks that the mirrors have the C sizes.
var (
	_ [144 - unsafe.Sizeof(kvmRegs{})]struct{}
	_ [unsafe.Sizeof(kvmRegs{}) - 144]struct{}
	_ [312 - unsafe.Sizeof(kvmSregs{})]struct{}
	_ [unsafe.Sizeof(kvmSregs{}) - 312]struct{}
	_ [48 - unsafe.Sizeof(kvmClockData{})]struct{}
	_ [unsafe.Sizeof(kvmClockData{}) - 48]struct{}
	_ [32 - unsafe.Sizeof(kvmMemoryRegion{})]struct{}
	_ [24 - unsafe.Sizeof(kvmDeviceAttr{})]struct{}
	_ [16 - unsafe.Sizeof(kvmDirtyLog{})]struct{}
)

// ioctl issues one ioctl, retrying on EINTR for requests that are not
// KVM_RUN (whose EINTR the caller must see).
func ioctl(fd int, req uintptr, arg uintptr) (uintptr, error) {
	for {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
		if errno == unix.EINTR && req != ioctlRun {
			continue
		}
		if errno != 0 {
			return r, errno
		}
		return r, nil
	}
}

func ioctlPtr[T any](fd int, req uintptr, v *T) error {
	_, err := ioctl(fd, req, uintptr(unsafe.Pointer(v)))
	return err
}

func getRegs(fd int) (kvmRegs, error) {
	var r kvmRegs
	if err := ioctlPtr(fd, ioctlGetRegs, &r); err != nil {
		return r, fmt.Errorf("KVM_GET_REGS: %w", err)
	}
	return r, nil
}

func setRegs(fd int, r kvmRegs) error {
	if err := ioctlPtr(fd, ioctlSetRegs, &r); err != nil {
		return fmt.Errorf("KVM_SET_REGS: %w", err)
	}
	return nil
}

func getSregs(fd int) (kvmSregs, error) {
	var s kvmSregs
	if err := ioctlPtr(fd, ioctlGetSregs, &s); err != nil {
		return s, fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	return s, nil
}

func setSregs(fd int, s kvmSregs) error {
	if err := ioctlPtr(fd, ioctlSetSregs, &s); err != nil {
		return fmt.Errorf("KVM_SET_SREGS: %w", err)
	}
	return nil
}

func getClock(vmFD int) (kvmClockData, error) {
	var c kvmClockData
	if err := ioctlPtr(vmFD, ioctlGetClock, &c); err != nil {
		return c, fmt.Errorf("KVM_GET_CLOCK: %w", err)
	}
	return c, nil
}

func setClock(vmFD int, c kvmClockData) error {
	if err := ioctlPtr(vmFD, ioctlSetClock, &c); err != nil {
		return fmt.Errorf("KVM_SET_CLOCK: %w", err)
	}
	return nil
}

// msrBuffer builds struct kvm_msrs with one entry per index.
func msrBuffer(indices []uint32, values []uint64) []byte {
	b := make([]byte, 8+16*len(indices))
	binary.LittleEndian.PutUint32(b, uint32(len(indices)))
	for i, idx := range indices {
		binary.LittleEndian.PutUint32(b[8+16*i:], idx)
		if values != nil {
			binary.LittleEndian.PutUint64(b[8+16*i+8:], values[i])
		}
	}
	return b
}

// getMSRs reads the MSRs named by indices; KVM returns how many it read,
// and stops at the first it cannot.
func getMSRs(fd int, indices []uint32) ([]uint64, error) {
	b := msrBuffer(indices, nil)
	n, err := ioctl(fd, ioctlGetMSRs, uintptr(unsafe.Pointer(&b[0])))
	if err != nil {
		return nil, fmt.Errorf("KVM_GET_MSRS: %w", err)
	}
	if int(n) != len(indices) {
		return nil, fmt.Errorf("KVM_GET_MSRS: read %d of %d MSRs, MSR %#x refused", n, len(indices), indices[n])
	}
	out := make([]uint64, len(indices))
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8+16*i+8:])
	}
	return out, nil
}

func setMSRs(fd int, indices []uint32, values []uint64) error {
	b := msrBuffer(indices, values)
	n, err := ioctl(fd, ioctlSetMSRs, uintptr(unsafe.Pointer(&b[0])))
	if err != nil {
		return fmt.Errorf("KVM_SET_MSRS: %w", err)
	}
	if int(n) != len(indices) {
		return fmt.Errorf("KVM_SET_MSRS: wrote %d of %d MSRs, MSR %#x refused", n, len(indices), indices[n])
	}
	return nil
}

func tscOffsetAttr(fd int, req uintptr, v *uint64) error {
	a := kvmDeviceAttr{Group: kvmVCPUTSCCtrl, Attr: kvmVCPUTSCOffset, Addr: uintptr(unsafe.Pointer(v))}
	return ioctlPtr(fd, req, &a)
}

func getTSCOffset(fd int) (uint64, error) {
	var v uint64
	if err := tscOffsetAttr(fd, ioctlGetDeviceAttr, &v); err != nil {
		return 0, fmt.Errorf("KVM_GET_DEVICE_ATTR(TSC_OFFSET): %w", err)
	}
	return v, nil
}

func setTSCOffset(fd int, v uint64) error {
	if err := tscOffsetAttr(fd, ioctlSetDeviceAttr, &v); err != nil {
		return fmt.Errorf("KVM_SET_DEVICE_ATTR(TSC_OFFSET): %w", err)
	}
	return nil
}

func hasTSCOffset(fd int) bool {
	var v uint64
	return tscOffsetAttr(fd, ioctlHasDeviceAttr, &v) == nil
}

// cpuidEntrySize is sizeof(struct kvm_cpuid_entry2): function, index,
// flags, eax, ebx, ecx, edx and three u32s of padding.
const cpuidEntrySize = 40

// maxCPUIDEntries bounds KVM_GET_SUPPORTED_CPUID's answer; KVM returns
// E2BIG if it has more, far beyond what any CPU lists today.
const maxCPUIDEntries = 256

// setSupportedCPUID gives the vCPU every CPUID leaf KVM supports (struct
// kvm_cpuid2: nent u32, padding u32, entries). Long mode needs the LM bit
// in the guest's CPUID on KVMs that check EFER writes against it.
func setSupportedCPUID(sysFD, vcpuFD int) error {
	b := make([]byte, 8+cpuidEntrySize*maxCPUIDEntries)
	binary.LittleEndian.PutUint32(b, maxCPUIDEntries)
	if _, err := ioctl(sysFD, ioctlGetSupportedCPUID, uintptr(unsafe.Pointer(&b[0]))); err != nil {
		return fmt.Errorf("KVM_GET_SUPPORTED_CPUID: %w", err)
	}
	if _, err := ioctl(vcpuFD, ioctlSetCPUID2, uintptr(unsafe.Pointer(&b[0]))); err != nil {
		return fmt.Errorf("KVM_SET_CPUID2: %w", err)
	}
	return nil
}
