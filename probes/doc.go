// Package probes holds migtrace's probe points: tiny functions that the
// migration protocol calls at every phase boundary, per batch of RAM
// transferred and at each time-data stage. They are the counterparts of
// propolis's USDT probes. A probe does nothing by itself; a tracer
// (probes/uprobe on Linux, the D scripts in probes/dtrace on illumos, the
// bpftrace scripts in probes/bpftrace) attaches to the function's entry and
// reads its integer arguments from the registers of Go's register ABI.
//
// The probe ABI is the set of symbols (Symbol), their argument order and the
// numeric values of schema.Role, schema.Phase and schema.Stage. Each probe
// takes at most 9 integer words so every argument is in a register at entry
// on amd64 (ax, bx, cx, di, si, r8, r9, r10, r11).
//
// Every probe is //go:noinline so it keeps its symbol, and //go:nosplit with
// a one-word frame so its first instruction is PUSHQ BP: x86 uprobes emulate
// a push in a single trap, while other first instructions (the RET of an
// empty function, a stack-bound check) are single-stepped out of line with
// a second trap, several times slower.
//
// The package has no errors: probes cannot fail.
package probes
