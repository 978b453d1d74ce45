package main

import "fmt"

// Exit statuses.
const (
	exitFailure = 1 // the command ran and failed (or found violations)
	exitUsage   = 2 // a missing or malformed flag or argument
)

// exitError carries the exit status for an error. silent means the command
// already told the user (e.g. a JSON error object on stdout).
type exitError struct {
	code   int
	err    error
	silent bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a missing or malformed flag or argument (exit 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// silentFailure is exit status 1 after the command printed its own error.
func silentFailure(err error) error {
	return &exitError{code: exitFailure, err: err, silent: true}
}
