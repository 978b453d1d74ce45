package uprobe

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// programSpec builds the one program every probe shares. It writes each
// hit into a slot of its CPU's own ring of slots in a memory-mapped BPF
// array, which the reader polls (slots.go). In C it would read:
//
//	cpu = bpf_get_smp_processor_id();
//	head = bpf_map_lookup_elem(&heads, &cpu); if (!head) return 0;
//	seq = __sync_fetch_and_add(head, 1);
//	idx = cpu * slots + (seq & (slots - 1));
//	s = bpf_map_lookup_elem(&ring, &idx); if (!s) return 0;
//	s->seq = 0; /* first: the slot is being written */
//	s->ts = bpf_ktime_get_ns(); s->pid_tgid = bpf_get_current_pid_tgid();
//	s->cookie = bpf_get_attach_cookie(ctx);
//	s->args[i] = ((u64 *)ctx)[argRegOffsets[i]/8] for each i;
//	s->seq = seq + 1; /* last: the record is complete */
//	return 0;
//
// A BPF ring buffer's reserve and submit, which this replaces, made the
// program take 150 to 180 ns a hit here against 90 to 110 ns now, by the
// kernel's own count (BenchmarkProgramRuntime): array lookups are inlined
// by the verifier and the slot is plain memory. The fetch-and-add
// gives a thread that preempts another on the same CPU a slot of its own,
// and the sequence number written last tells the reader a slot is
// complete; x86 keeps the stores in order.
func programSpec(heads, ring *ebpf.Map, slots uint32) *ebpf.ProgramSpec {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // R6 = ctx (struct pt_regs *)
		asm.FnGetSmpProcessorId.Call(),
		asm.Mov.Reg(asm.R7, asm.R0), // R7 = cpu
		asm.StoreMem(asm.RFP, -4, asm.R0, asm.Word),
		asm.LoadMapPtr(asm.R1, heads.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Imm(asm.R1, 1),
		fetchAdd(asm.R0, asm.R1),    // R1 = *head, *head += 1
		asm.Mov.Reg(asm.R8, asm.R1), // R8 = seq
		asm.And.Imm(asm.R1, int32(slots-1)),
		asm.Mul.Imm(asm.R7, int32(slots)),
		asm.Add.Reg(asm.R7, asm.R1),
		asm.StoreMem(asm.RFP, -8, asm.R7, asm.Word),
		asm.LoadMapPtr(asm.R1, ring.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.Mov.Reg(asm.R7, asm.R0), // R7 = slot
		// Not whole until its number is back: a reader copying the slot's
		// previous record sees the change.
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.R7, seqOff, asm.R1, asm.DWord),
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
		asm.Add.Imm(asm.R8, 1),
		asm.StoreMem(asm.R7, seqOff, asm.R8, asm.DWord),
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

// fetchAdd is `src = atomic_fetch_add((u64 *)dst, src)`. cilium/ebpf
// v0.22.0 puts an atomic operation in the immediate only after it has
// read the immediate to encode, so asm.FetchAdd alone assembles to a plain
// atomic add that leaves src alone; setting the immediate here too
// encodes BPF_ADD | BPF_FETCH.
func fetchAdd(dst, src asm.Register) asm.Instruction {
	ins := asm.FetchAdd.Mem(dst, src, asm.DWord, 0)
	ins.Constant = int64(asm.FetchAdd >> 8)
	return ins
}
