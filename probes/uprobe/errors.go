package uprobe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotSupported: not Linux, not amd64, or the kernel lacks a feature
	// the tracer needs (BPF, memory-mapped arrays, uprobes, attach cookies).
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

// SymbolError reports symbols that could not be found in a binary.
type SymbolError struct {
	Symbols []string
	Binary  string
	Err     error // the cause, if more than "not there"
}

func (e *SymbolError) Error() string {
	quoted := make([]string, len(e.Symbols))
	for i, s := range e.Symbols {
		quoted[i] = strconv.Quote(s)
	}
	noun := "probe symbol"
	if len(e.Symbols) > 1 {
		noun = "probe symbols"
	}
	msg := fmt.Sprintf("%s %s not found in %s", noun, strings.Join(quoted, ", "), e.Binary)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrNoSymbol) true.
func (e *SymbolError) Is(target error) bool { return target == ErrNoSymbol }

// Unwrap returns the cause.
func (e *SymbolError) Unwrap() error { return e.Err }
