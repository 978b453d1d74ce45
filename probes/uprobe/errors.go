package uprobe

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotSupported: not Linux, not amd64, or the kernel lacks a feature
	// the tracer needs (BPF, ring buffers, uprobes, attach cookies).
	ErrNotSupported = errors.New("uprobe tracing is not supported here")
	// ErrPermission: the caller may not load BPF programs or open uprobes.
	ErrPermission = errors.New("permission denied: tracing needs root, or CAP_BPF and CAP_PERFMON")
	// ErrNoProcess: the PID names no running process.
	ErrNoProcess = errors.New("no such process")
	// ErrNoSymbol: the binary has no function of that name.
	ErrNoSymbol = errors.New("probe symbol not found")
	// ErrProcessExited: the traced process went away.
	ErrProcessExited = errors.New("traced process exited")
	// ErrClosed: the Tracer was closed.
	ErrClosed = errors.New("tracer closed")
)

// SymbolError reports a symbol that could not be found in a binary.
type SymbolError struct {
	Symbol string
	Binary string
	Err    error // the cause, if more than "not there"
}

func (e *SymbolError) Error() string {
	msg := fmt.Sprintf("probe symbol %q not found in %s", e.Symbol, e.Binary)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrNoSymbol) true.
func (e *SymbolError) Is(target error) bool { return target == ErrNoSymbol }

// Unwrap returns the cause.
func (e *SymbolError) Unwrap() error { return e.Err }
