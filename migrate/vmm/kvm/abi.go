package kvm

// Mirrors of the KVM structures that device state carries. Their field
// order and sizes match the C layouts on x86-64 with no implicit padding,
// so encoding/binary writes exactly the kernel's bytes.

// kvmRegs mirrors struct kvm_regs (144 bytes).
type kvmRegs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// kvmSegment mirrors struct kvm_segment (24 bytes).
type kvmSegment struct {
	Base                         uint64
	Limit                        uint32
	Selector                     uint16
	Type, Present, DPL, DB, S, L uint8
	G, AVL, Unusable, Padding    uint8
}

// kvmDTable mirrors struct kvm_dtable (16 bytes).
type kvmDTable struct {
	Base    uint64
	Limit   uint16
	Padding [3]uint16
}

// kvmSregs mirrors struct kvm_sregs (312 bytes).
type kvmSregs struct {
	CS, DS, ES, FS, GS, SS, TR, LDT kvmSegment
	GDT, IDT                        kvmDTable
	CR0, CR2, CR3, CR4, CR8         uint64
	EFER, APICBase                  uint64
	InterruptBitmap                 [4]uint64
}

// kvmClockData mirrors struct kvm_clock_data (48 bytes).
type kvmClockData struct {
	Clock    uint64
	Flags    uint32
	Pad0     uint32
	Realtime uint64
	HostTSC  uint64
	Pad      [4]uint32
}
