package uprobe

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Ring buffer flags. Records are submitted without waking the reader
// (BPF_RB_NO_WAKEUP), which polls every Options.PollInterval: a wakeup per
// record costs a few µs in a VM. Once a quarter of the ring is waiting,
// submits force a wakeup so a reader that fell behind catches up before
// the ring fills.
const (
	bpfRingbufNoWakeup    = 1 // BPF_RB_NO_WAKEUP
	bpfRingbufForceWakeup = 2 // BPF_RB_FORCE_WAKEUP
	bpfRingbufAvailData   = 0 // BPF_RB_AVAIL_DATA, for bpf_ringbuf_query
)

// programSpec builds the one program every probe shares. In C it would read:
//
//	rec = bpf_ringbuf_reserve(&ring, RecordSize, 0);
//	if (!rec) { lost[0]++; return 0; }
//	rec->ts = bpf_ktime_get_ns(); rec->pid_tgid = bpf_get_current_pid_tgid();
//	rec->cookie = bpf_get_attach_cookie(ctx);
//	rec->args[i] = ((u64 *)ctx)[argRegOffsets[i]/8] for each i;
//	flags = bpf_ringbuf_query(&ring, BPF_RB_AVAIL_DATA) < wakeAt ? BPF_RB_NO_WAKEUP : BPF_RB_FORCE_WAKEUP;
//	bpf_ringbuf_submit(rec, flags); return 0;
func programSpec(ring, lost *ebpf.Map, wakeAt int32) *ebpf.ProgramSpec {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // R6 = ctx (struct pt_regs *)
		asm.LoadMapPtr(asm.R1, ring.FD()),
		asm.Mov.Imm(asm.R2, RecordSize),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnRingbufReserve.Call(),
		asm.JNE.Imm(asm.R0, 0, "fill"),

		// The ring is full: count the loss so the reader can say so.
		asm.StoreImm(asm.RFP, -4, 0, asm.Word), // key 0
		asm.LoadMapPtr(asm.R1, lost.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Ja.Label("exit"),

		asm.Mov.Reg(asm.R7, asm.R0).WithSymbol("fill"), // R7 = record
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.R7, 0, asm.R0, asm.DWord),
		asm.FnGetCurrentPidTgid.Call(),
		asm.StoreMem(asm.R7, 8, asm.R0, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnGetAttachCookie.Call(),
		asm.StoreMem(asm.R7, 16, asm.R0, asm.DWord),
	}
	for i, off := range argRegOffsets {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.R6, off, asm.DWord),
			asm.StoreMem(asm.R7, int16(24+8*i), asm.R1, asm.DWord),
		)
	}
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, ring.FD()),
		asm.Mov.Imm(asm.R2, bpfRingbufAvailData),
		asm.FnRingbufQuery.Call(),
		asm.Mov.Imm(asm.R2, bpfRingbufNoWakeup),
		asm.JLT.Imm(asm.R0, wakeAt, "submit"),
		asm.Mov.Imm(asm.R2, bpfRingbufForceWakeup),
		asm.Mov.Reg(asm.R1, asm.R7).WithSymbol("submit"),
		asm.FnRingbufSubmit.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	)
	return &ebpf.ProgramSpec{
		Name:         "migtrace_uprobe",
		Type:         ebpf.Kprobe, // uprobes use the kprobe program type
		License:      "Dual MIT/GPL",
		Instructions: insns,
	}
}
