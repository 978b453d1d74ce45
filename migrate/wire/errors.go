package wire

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/migtrace/migtrace/tracing/schema"
)

// Sentinel errors; match them with errors.Is. The typed errors below wrap
// them with the context of the failure.
var (
	// ErrFrameTooLarge: a frame's length header exceeds the Conn's limit
	// (at most MaxPayload). It is detected before the payload is read.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrUnknownType: a frame carries a message type this version lacks.
	ErrUnknownType = errors.New("unknown message type")
	// ErrMalformed: a frame or message does not follow its layout (short,
	// trailing bytes, a field out of range, a stream cut mid-frame).
	ErrMalformed = errors.New("malformed frame")
	// ErrChecksum: a frame's CRC-32C does not match its header and payload:
	// it was corrupted in transit.
	ErrChecksum = errors.New("frame checksum mismatch")
	// ErrUnexpectedMessage: a well-formed message arrived where the protocol
	// expects another one.
	ErrUnexpectedMessage = errors.New("unexpected message")
	// ErrNoCommonVersion: the two sides share no protocol version.
	ErrNoCommonVersion = errors.New("no common protocol version")
	// ErrInvalidMessage: Send refused a message that cannot be encoded (a
	// string over its bound, page data of the wrong length, ...).
	ErrInvalidMessage = errors.New("invalid message")
	// ErrNoClockSample: EstimateOffset had no usable sample.
	ErrNoClockSample = errors.New("no usable clock sample")
	// ErrUpgrade: the HTTP upgrade to the migration protocol failed.
	ErrUpgrade = errors.New("migration upgrade failed")

	// ErrTimeout is the standard deadline error: a read or write did not
	// finish within the Conn's I/O timeout or the context's deadline.
	ErrTimeout = os.ErrDeadlineExceeded
	// ErrClosed is the standard error for I/O on a closed connection.
	ErrClosed = net.ErrClosed
)

// FrameError says which frame and which field failed to decode, and where.
// It matches ErrFrameTooLarge, ErrUnknownType or ErrMalformed (Err), and the
// underlying I/O error (Cause) if there is one, e.g. io.ErrUnexpectedEOF.
type FrameError struct {
	// Type is the frame's message type (0 if the header was not read).
	Type Type
	// Field names the field that failed, or "header" / "payload".
	Field string
	// Offset is the byte offset of Field within the payload, or -1 for the
	// frame header.
	Offset int
	// StreamOffset is the byte offset of the frame's header within the
	// stream, or -1 when decoding a payload on its own (Unmarshal).
	StreamOffset int64
	// Detail says what was wrong.
	Detail string
	// Err is the sentinel: ErrFrameTooLarge, ErrUnknownType or ErrMalformed.
	Err error
	// Cause is the I/O error behind a short read, if any.
	Cause error
}

func (e *FrameError) Error() string {
	var b strings.Builder
	b.WriteString("wire: ")
	if e.Type != 0 {
		b.WriteString(e.Type.String())
		b.WriteString(" ")
	}
	b.WriteString("frame")
	if e.StreamOffset >= 0 {
		fmt.Fprintf(&b, " at stream byte %d", e.StreamOffset)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": %s", e.Field)
		if e.Offset >= 0 {
			fmt.Fprintf(&b, " at payload byte %d", e.Offset)
		}
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, " (%v)", e.Err)
	}
	return b.String()
}

// Unwrap returns the sentinel and, for short reads, the I/O error.
func (e *FrameError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// UnexpectedMessageError names the message that arrived and the one that
// was expected. It matches ErrUnexpectedMessage.
type UnexpectedMessageError struct {
	Got, Want Type
}

func (e *UnexpectedMessageError) Error() string {
	return fmt.Sprintf("unexpected message: got %s, want %s", e.Got, e.Want)
}

// Is matches ErrUnexpectedMessage.
func (e *UnexpectedMessageError) Is(target error) bool { return target == ErrUnexpectedMessage }

// RemoteError is an Error message the peer sent: the peer failed and says
// why. Phase is the peer's phase at the time (0 during the handshake).
type RemoteError struct {
	Phase   schema.Phase
	Message string
}

func (e *RemoteError) Error() string {
	if e.Phase == 0 {
		return "peer failed: " + e.Message
	}
	return fmt.Sprintf("peer failed in phase %s: %s", e.Phase, e.Message)
}

// VersionMismatchError lists both sides' protocol versions when they share
// none. It matches ErrNoCommonVersion.
type VersionMismatchError struct {
	// Ours are the versions the reporting side supports; Theirs are the
	// peer's.
	Ours, Theirs []uint32
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("no common protocol version: ours %v, theirs %v", e.Ours, e.Theirs)
}

// Is matches ErrNoCommonVersion.
func (e *VersionMismatchError) Is(target error) bool { return target == ErrNoCommonVersion }

// UpgradeError is a refused HTTP upgrade: the status the server answered
// with and the reason its body gives (a JSON object's "error", or the
// body's first line). It matches ErrUpgrade.
type UpgradeError struct {
	Addr, Path string
	Status     string
	Body       string
}

func (e *UpgradeError) Error() string {
	msg := fmt.Sprintf("migration upgrade at %s%s refused: %s", e.Addr, e.Path, e.Status)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Is matches ErrUpgrade.
func (e *UpgradeError) Is(target error) bool { return target == ErrUpgrade }
