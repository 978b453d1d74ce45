package uprobe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Tracer holds the uprobes attached to one process and reads their records.
// Read is not safe for concurrent use; Close may be called from any goroutine.
type Tracer struct {
	opts    Options
	binary  string // what error messages call the binary
	ring    *slotRing
	prog    *ebpf.Program
	links   []link.Link
	pending []Record
	exited  bool
}

// Attach places an entry uprobe on every target's function in the process
// opts.PID. Every missing symbol is reported at once, in one *SymbolError.
// The caller must Close the Tracer.
func Attach(targets []Target, opts *Options) (_ *Tracer, err error) {
	o := opts.withDefaults()
	if runtime.GOARCH != "amd64" {
		return nil, fmt.Errorf("attaching uprobes on %s: the argument registers are only mapped for amd64: %w",
			runtime.GOARCH, ErrNotSupported)
	}
	if o.PID <= 0 {
		return nil, fmt.Errorf("attaching uprobes: pid %d: %w", o.PID, ErrNoProcess)
	}
	if !processAlive(o.PID) {
		return nil, fmt.Errorf("attaching uprobes: pid %d: %w", o.PID, ErrNoProcess)
	}
	path, name := o.Binary, o.Binary
	if path == "" {
		// The magic link reaches the process's own file even when a rebuild
		// replaced the one on disk.
		path = fmt.Sprintf("/proc/%d/exe", o.PID)
		name = path
		if target, err := os.Readlink(path); err == nil {
			name = target
		} else if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("finding the binary of pid %d: %w: %w", o.PID, ErrPermission, err)
		}
	}
	syms, err := OpenSymbolTable(path)
	if err != nil {
		return nil, classify("attaching uprobes", err)
	}
	offsets := make([]uint64, len(targets))
	missing := &SymbolError{Binary: name}
	for i, tg := range targets {
		off, err := syms.Offset(tg.Symbol)
		if err != nil {
			var se *SymbolError
			if !errors.As(err, &se) || se.Err != nil {
				return nil, fmt.Errorf("attaching uprobes to pid %d: %w", o.PID, err)
			}
			missing.Symbols = append(missing.Symbols, tg.Symbol)
			continue
		}
		offsets[i] = off
	}
	if len(missing.Symbols) > 0 {
		// Every missing symbol at once: one look tells an old binary from a typo.
		return nil, fmt.Errorf("attaching uprobes to pid %d: %w", o.PID, missing)
	}

	t := &Tracer{opts: o, binary: name}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if t.ring, err = newSlotRing(o.RingBytes); err != nil {
		return nil, err
	}
	t.prog, err = ebpf.NewProgram(programSpec(t.ring.heads, t.ring.ring, uint32(t.ring.slots)))
	if err != nil {
		return nil, classify("loading the uprobe program", err)
	}
	ex, err := link.OpenExecutable(path)
	if err != nil {
		return nil, classify("opening "+name, err)
	}
	for i, tg := range targets {
		l, err := ex.Uprobe(tg.Symbol, t.prog, &link.UprobeOptions{Address: offsets[i], PID: o.PID, Cookie: tg.Cookie})
		if err != nil {
			return nil, classify(fmt.Sprintf("attaching a uprobe to %s in %s (pid %d)", tg.Symbol, name, o.PID), err)
		}
		t.links = append(t.links, l)
	}
	return t, nil
}

// classify wraps err with the sentinel that names its cause.
func classify(op string, err error) error {
	switch {
	case errors.Is(err, ErrNoSymbol), errors.Is(err, ErrNoProcess), errors.Is(err, ErrPermission):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%s: %w: %w", op, ErrPermission, err)
	case errors.Is(err, ebpf.ErrNotSupported), errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("%s: %w: %w", op, ErrNotSupported, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Binary is the file the uprobes sit on, as error messages name it.
func (t *Tracer) Binary() string { return t.binary }

// Read blocks until records are ready and returns them in timestamp order.
// A record is ready once the reorder window has passed over it, or when the
// process has exited. After the last record of an exited process Read
// returns ErrProcessExited; when ctx ends it returns ctx.Err().
func (t *Tracer) Read(ctx context.Context) ([]Record, error) {
	if t.ring == nil {
		return nil, ErrClosed
	}
	for {
		if out := t.release(); len(out) > 0 {
			return out, nil
		}
		if t.exited {
			return nil, fmt.Errorf("pid %d: %w", t.opts.PID, ErrProcessExited)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Check liveness before draining, so records written before the
		// exit are all in the rings when we drain them.
		alive := processAlive(t.opts.PID)
		before := len(t.pending)
		var err error
		if t.pending, err = t.ring.drain(t.pending); err != nil {
			return nil, err
		}
		t.exited = !alive
		if len(t.pending) == before && alive {
			// Nothing new: wait a poll interval. While records flow,
			// draining again at once keeps the rings from filling.
			select {
			case <-ctx.Done():
			case <-time.After(t.opts.PollInterval):
			}
		}
	}
}

// release returns the pending records older than the reorder window (all of
// them once the process has exited), sorted by timestamp.
func (t *Tracer) release() []Record {
	if len(t.pending) == 0 {
		return nil
	}
	byTime := func(a, b Record) int {
		switch {
		case a.Timestamp < b.Timestamp:
			return -1
		case a.Timestamp > b.Timestamp:
			return 1
		}
		return 0
	}
	// Each CPU's records come in order, so with one busy thread they
	// usually are already: checking is a pass, sorting moves every record
	// of a deep backlog, which was most of the reader's time.
	if !slices.IsSortedFunc(t.pending, byTime) {
		slices.SortStableFunc(t.pending, byTime)
	}
	n := len(t.pending)
	if !t.exited {
		var now unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &now); err != nil {
			return nil
		}
		cutoff := uint64(now.Nano()) - uint64(t.opts.ReorderWindow)
		n, _ = slices.BinarySearchFunc(t.pending, cutoff+1, func(r Record, ts uint64) int {
			if r.Timestamp < ts {
				return -1
			}
			return 1
		})
	}
	if n == 0 {
		return nil
	}
	out := slices.Clone(t.pending[:n])
	t.pending = append(t.pending[:0], t.pending[n:]...)
	return out
}

// Lost returns how many records were lost: written over in their CPU's
// ring before the reader reached them. It is safe to call from any
// goroutine.
func (t *Tracer) Lost() (uint64, error) {
	r := t.ring
	if r == nil {
		return 0, ErrClosed
	}
	return r.lost.Load(), nil
}

// Close detaches every uprobe and frees the BPF objects. It is idempotent.
// A Read in progress then returns ErrClosed.
func (t *Tracer) Close() error {
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	if t.prog != nil {
		errs = append(errs, t.prog.Close())
	}
	if t.ring != nil {
		errs = append(errs, t.ring.close())
	}
	t.prog = nil
	return errors.Join(errs...)
}

func joinErrs(errs []error) error { return errors.Join(errs...) }

// processAlive reports whether pid runs and is not a zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain parentheses: take the last one.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	state := stat[i+2]
	return state != 'Z' && state != 'X'
}
