// Package uprobe traces Go functions in a running process with Linux uprobes
// and eBPF, without clang, tracefs or any change to the target.
//
// One BPF program, written with cilium/ebpf's asm package, serves every
// probed symbol: each attachment carries its own cookie, which the program
// copies into a fixed 96-byte Record along with the time
// (bpf_ktime_get_ns, i.e. CLOCK_MONOTONIC), the pid/tid and the nine
// integer argument registers of Go's amd64 register ABI. Records travel
// through a ring of slots per CPU in a BPF array that the reader maps into
// its memory and polls, which costs a probe hit less than a BPF ring
// buffer would; Tracer.Read returns them in timestamp order, and Lost
// counts any a ring wrote over before they were read.
//
// Only function entries are probed. Return probes (uretprobes) rewrite the
// return address on the stack, which crashes Go programs whose stacks move.
//
// Stripped binaries (-ldflags=-s) are resolved through .gopclntab.
//
// Errors: every failure wraps one of the sentinels ErrNotSupported (not
// Linux, or the kernel lacks BPF, memory-mapped arrays, uprobes or attach cookies),
// ErrPermission (not root and lacking CAP_BPF/CAP_PERFMON), ErrNoProcess,
// ErrNoSymbol (a *SymbolError names every missing symbol and the binary) or
// ErrProcessExited; match them with errors.Is.
package uprobe
