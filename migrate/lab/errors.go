package lab

import "errors"

var (
	// ErrUnsupported means this machine cannot run a lab: not Linux, not
	// root, no network or time namespaces, or no iproute2.
	ErrUnsupported = errors.New("lab unsupported here")
	// ErrClosed is returned by every method once the lab is closed.
	ErrClosed = errors.New("lab closed")
	// ErrInvalid is a bad argument: a host name, an option, a host of
	// another lab.
	ErrInvalid = errors.New("invalid lab argument")
	// ErrExists is a second host of the same name or a second link
	// between the same two hosts.
	ErrExists = errors.New("already exists")
	// ErrNotFound is a link or path between two hosts that has none.
	ErrNotFound = errors.New("not found")
	// ErrFull means the lab has used all its address space (64 /30s).
	ErrFull = errors.New("lab address space exhausted")
	// ErrServing is Serve on a host whose serve still runs.
	ErrServing = errors.New("host already serving")
	// ErrNotServing is Stop or Kill on a host with no serve running.
	ErrNotServing = errors.New("host not serving")
	// ErrExited means serve exited before its API answered.
	ErrExited = errors.New("serve exited")
	// ErrCut is an operation on a link or proxy that was cut.
	ErrCut = errors.New("link cut")
	// ErrCommand is a failed ip or tc command; the error names it and
	// carries its output.
	ErrCommand = errors.New("command failed")
	// ErrHTTP is a non-2xx answer from a host's API.
	ErrHTTP = errors.New("host API error")
)
