// Package wire is the migration protocol's wire layer: the HTTP upgrade
// that turns a server's listen address into a migration stream, optional
// mutual TLS 1.3, the version handshake, length-prefixed typed frames, and
// the messages of every phase, each with a bounds-checked decoder. The
// phase state machines (package migrate) sit on top; docs/protocol.md
// describes the format and the phase sequence.
//
// A frame is an 8-byte header (type u8, flags u8, reserved u16, payload
// length u32 big-endian) and a payload of at most MaxPayload bytes, whose
// fields are little-endian. The length is checked before anything is
// allocated or read.
//
// A Conn sends and receives messages with a deadline on every read and
// write (the I/O timeout combined with the context's deadline), aborts them
// when the context is cancelled, counts bytes, can cap its bandwidth, and
// receives page data into a reused buffer: a *PageData or *ZeroPages from
// Recv is valid until the next Recv.
//
// Errors: decoding failures are *FrameError values matching
// ErrFrameTooLarge, ErrUnknownType or ErrMalformed; an out-of-order message
// is an *UnexpectedMessageError (ErrUnexpectedMessage); an Error message
// from the peer surfaces from Expect as a *RemoteError; a failed version
// negotiation is a *VersionMismatchError (ErrNoCommonVersion); timeouts
// match ErrTimeout (os.ErrDeadlineExceeded) and cancellation the context's
// error; a refused upgrade is an *UpgradeError (ErrUpgrade). Match them with
// errors.Is and errors.As.
package wire
