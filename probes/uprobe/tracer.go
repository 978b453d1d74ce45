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
	// RingBytes is the ring buffer's size, a power of two multiple of the
	// page size. Zero means 4 MiB, about 40000 records.
	RingBytes int
	// PollInterval is how often Read drains the ring buffer. The program
	// submits without waking the reader, which keeps a wakeup (a few µs in
	// a VM) off every probe hit. Zero means 10 ms.
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
		v.RingBytes = 4 << 20
	}
	if v.PollInterval == 0 {
		v.PollInterval = 10 * time.Millisecond
	}
	if v.ReorderWindow == 0 {
		v.ReorderWindow = 5 * time.Millisecond
	}
	return v
}
