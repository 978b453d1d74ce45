package uprobe

import "time"

// Options configure Attach. The zero value of every field but PID is a
// sensible default.
type Options struct {
	// PID is the process to trace; its threads all count. Required.
	PID int
	// Binary is the executable the symbols are looked up in and the uprobes
	// are placed on. Empty means the process's own, /proc/PID/exe.
	Binary string
	// RingBytes is the memory the records pass through, shared out among
	// the CPUs, each getting a ring of a power of two slots of 104 bytes
	// (at least 8192, at most 2^20). Zero means 32 MiB: 131072 records a
	// CPU on two CPUs, 100 ms of a probe hit every 760 ns. A record the
	// reader had not reached when its CPU's ring came round is lost, and
	// counted (Lost).
	RingBytes int
	// PollInterval is how long Read waits before it looks again when it
	// found nothing new. The program never wakes the reader, which keeps a
	// wakeup (a few µs in a VM) off every probe hit, and looking costs no
	// system call. While records flow Read looks again at once. Zero
	// means 2 ms.
	PollInterval time.Duration
	// ReorderWindow is how long Read holds a record back so that records
	// from other CPUs with earlier timestamps can overtake it. Zero means
	// 5 ms, far above the microseconds a BPF program runs.
	ReorderWindow time.Duration
}

func (o *Options) withDefaults() Options {
	v := Options{}
	if o != nil {
		v = *o
	}
	if v.RingBytes == 0 {
		v.RingBytes = 32 << 20
	}
	if v.PollInterval == 0 {
		v.PollInterval = 2 * time.Millisecond
	}
	if v.ReorderWindow == 0 {
		v.ReorderWindow = 5 * time.Millisecond
	}
	return v
}
