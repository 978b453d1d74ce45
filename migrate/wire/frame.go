package wire

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Type identifies a message on the wire. Codes are part of the protocol:
// they never change meaning, and new messages get new codes.
type Type uint8

// The message types of protocol versions 1 and 2. See docs/protocol.md
// for each message's layout and where it appears.
const (
	TypeHello       Type = 1  // D→S: the versions the destination speaks
	TypeHelloReply  Type = 2  // S→D: the version chosen
	TypeOkay        Type = 3  // either way: acknowledgement
	TypeError       Type = 4  // either way: the sender failed
	TypeSync        Type = 5  // S→D: migration id, trace context, spec
	TypeClockProbe  Type = 6  // D→S: NTP-style probe
	TypeClockReply  Type = 7  // S→D: answer to a probe
	TypeRoundBegin  Type = 8  // S→D: a RAM push round starts
	TypePageData    Type = 9  // S→D: a run of non-zero pages
	TypeZeroPages   Type = 10 // S→D: runs of all-zero pages
	TypeRoundEnd    Type = 11 // S→D: a RAM push round ends
	TypeRoundAck    Type = 12 // D→S: a round was received
	TypePullRequest Type = 13 // D→S: pages the destination still needs
	TypePullEnd     Type = 14 // S→D: the pull answer is complete
	TypeTimeData    Type = 15 // S→D: the guest's time data
	TypeDeviceState Type = 16 // S→D: every device's state
	TypeServerState Type = 17 // both ways: server identity and console
	TypeFinish      Type = 18 // S→D: checksums and the source's phase timings
	TypeHandoff     Type = 19 // S→D: the commit point; the source never resumes
	TypeResumed     Type = 20 // D→S: the destination runs the guest; the source may destroy its copy

	// Version 2.
	TypeMemoryCheck  Type = 21 // S→D: how memory is verified, and a sample of page hashes
	TypeMemoryDigest Type = 22 // S→D: after the handoff, the checksum of all memory at pause
	TypePageList     Type = 23 // S→D: pages that need not be consecutive
)

var typeNames = [...]string{
	TypeHello:       "Hello",
	TypeHelloReply:  "HelloReply",
	TypeOkay:        "Okay",
	TypeError:       "Error",
	TypeSync:        "Sync",
	TypeClockProbe:  "ClockProbe",
	TypeClockReply:  "ClockReply",
	TypeRoundBegin:  "RoundBegin",
	TypePageData:    "PageData",
	TypeZeroPages:   "ZeroPages",
	TypeRoundEnd:    "RoundEnd",
	TypeRoundAck:    "RoundAck",
	TypePullRequest: "PullRequest",
	TypePullEnd:     "PullEnd",
	TypeTimeData:    "TimeData",
	TypeDeviceState: "DeviceState",
	TypeServerState: "ServerState",
	TypeFinish:      "Finish",
	TypeHandoff:     "Handoff",
	TypeResumed:     "Resumed",

	TypeMemoryCheck:  "MemoryCheck",
	TypeMemoryDigest: "MemoryDigest",
	TypePageList:     "PageList",
}

// Valid reports whether t is a message type of this protocol version.
func (t Type) Valid() bool { return t >= TypeHello && int(t) < len(typeNames) }

// String returns the message name, e.g. "PageData".
func (t Type) String() string {
	if t.Valid() {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Frame layout and limits.
const (
	// HeaderSize is the size of a frame header: type u8, flags u8,
	// reserved u16, payload length u32 big-endian, and a CRC-32C u32
	// big-endian over the header's first 8 bytes and the payload.
	HeaderSize = 12
	// PageSize is the size of a guest page carried by PageData.
	PageSize = 4096
	// MaxPagesPerFrame bounds PageData.Count: 4 MiB of page data.
	MaxPagesPerFrame = 1024
	// MaxPayload is the hard upper bound on a frame's payload: a full
	// PageData frame plus one page of headroom for headers. Conns may be
	// configured lower (WithMaxPayload), never higher.
	MaxPayload = MaxPagesPerFrame*PageSize + PageSize

	// MaxVersions bounds the version list in Hello.
	MaxVersions = 64
	// MaxErrorMessage bounds Error.Message, in bytes.
	MaxErrorMessage = 64 << 10
	// MaxNameLen bounds names: SourceName, ServerState.Name and Address,
	// device names and kinds.
	MaxNameLen = 1024
	// MaxTraceParentLen and MaxTraceStateLen bound the W3C trace context
	// (traceparent is 55 bytes in version 00; tracestate at most 512).
	MaxTraceParentLen = 256
	MaxTraceStateLen  = 1024
)

// Message is one protocol message. Only this package's types implement it;
// each is used as a pointer (*Hello, *PageData, ...).
type Message interface {
	// Type is the message's type code.
	Type() Type
	// appendPayload appends the encoded payload to b.
	appendPayload(b []byte) ([]byte, error)
	// decodePayload fills the message from d, reusing its slices.
	decodePayload(d *decoder)
}

// newMessage returns a zero message of type t, or nil if t is unknown.
func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeHelloReply:
		return new(HelloReply)
	case TypeOkay:
		return new(Okay)
	case TypeError:
		return new(Error)
	case TypeSync:
		return new(Sync)
	case TypeClockProbe:
		return new(ClockProbe)
	case TypeClockReply:
		return new(ClockReply)
	case TypeRoundBegin:
		return new(RoundBegin)
	case TypePageData:
		return new(PageData)
	case TypeZeroPages:
		return new(ZeroPages)
	case TypeRoundEnd:
		return new(RoundEnd)
	case TypeRoundAck:
		return new(RoundAck)
	case TypePullRequest:
		return new(PullRequest)
	case TypePullEnd:
		return new(PullEnd)
	case TypeTimeData:
		return new(TimeData)
	case TypeDeviceState:
		return new(DeviceState)
	case TypeServerState:
		return new(ServerState)
	case TypeFinish:
		return new(Finish)
	case TypeHandoff:
		return new(Handoff)
	case TypeResumed:
		return new(Resumed)
	case TypeMemoryCheck:
		return new(MemoryCheck)
	case TypeMemoryDigest:
		return new(MemoryDigest)
	case TypePageList:
		return new(PageList)
	}
	return nil
}

// Marshal returns m's encoded payload (without the frame header).
func Marshal(m Message) ([]byte, error) {
	b, err := m.appendPayload(nil)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxPayload {
		return nil, fmt.Errorf("encoding %s: %d-byte payload over the %d-byte limit: %w", m.Type(), len(b), MaxPayload, ErrFrameTooLarge)
	}
	return b, nil
}

// AppendFrame appends m as a complete frame (header and payload) to b.
func AppendFrame(b []byte, m Message) ([]byte, error) {
	start := len(b)
	b = append(b, make([]byte, HeaderSize)...)
	b, err := m.appendPayload(b)
	if err != nil {
		return b[:start], err
	}
	n := len(b) - start - HeaderSize
	if n > MaxPayload {
		return b[:start], fmt.Errorf("encoding %s: %d-byte payload over the %d-byte limit: %w", m.Type(), n, MaxPayload, ErrFrameTooLarge)
	}
	putHeader(b[start:], m.Type(), n)
	return b, nil
}

// Unmarshal decodes a payload of type t. The result owns its memory: it
// does not alias payload.
func Unmarshal(t Type, payload []byte) (Message, error) {
	m := newMessage(t)
	if m == nil {
		return nil, &FrameError{Type: t, Field: "header", Offset: -1, StreamOffset: -1,
			Detail: fmt.Sprintf("type code %d", uint8(t)), Err: ErrUnknownType}
	}
	if len(payload) > MaxPayload {
		return nil, &FrameError{Type: t, Field: "header", Offset: -1, StreamOffset: -1,
			Detail: fmt.Sprintf("%d-byte payload over the %d-byte limit", len(payload), MaxPayload), Err: ErrFrameTooLarge}
	}
	var d decoder
	if err := d.decode(m, payload, -1); err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case *PageData:
		m.Data = append([]byte(nil), m.Data...)
	case *PageList:
		m.Data = append([]byte(nil), m.Data...)
	}
	return m, nil
}

// decode fills m from payload. The decoder escapes through the interface
// call, so the Conn keeps one rather than allocate one per frame.
func (d *decoder) decode(m Message, payload []byte, streamOffset int64) error {
	*d = decoder{buf: payload, typ: m.Type(), stream: streamOffset}
	m.decodePayload(d)
	d.finish()
	err := d.err
	*d = decoder{} // drop the reference to the payload
	return err
}

// putHeader writes the header of the frame f (header and n payload bytes),
// checksum included.
func putHeader(f []byte, t Type, n int) {
	f[0] = byte(t)
	f[1] = 0 // flags: none defined in version 1
	f[2], f[3] = 0, 0
	binary.BigEndian.PutUint32(f[4:8], uint32(n))
	binary.BigEndian.PutUint32(f[8:12], frameChecksum(t, f[:8], f[HeaderSize:HeaderSize+n]))
}

// castagnoli is CRC-32C, which amd64 and arm64 compute in hardware.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameChecksum is the CRC-32C of a frame's first 8 header bytes and its
// payload, except the guest pages of a PageData: TCP's own checksum is 16
// bits, and this catches what slips past it before a message is decoded.
// Page contents are checked end to end instead, by the memory checksum the
// destination compares at the handoff; covering them here too measured a
// third off the page push's throughput.
func frameChecksum(t Type, head, payload []byte) uint32 {
	var tail []byte
	switch t {
	case TypePageData:
		payload = payload[:min(len(payload), pageDataFixed)]
	case TypePageList:
		payload, tail = listChecked(payload)
	}
	sum := crc32.Update(crc32.Update(0, castagnoli, head), castagnoli, payload)
	return crc32.Update(sum, castagnoli, tail)
}

// decoder reads little-endian fields with bounds checks. The first failure
// sticks: later reads return zero values, and err says what failed where.
type decoder struct {
	buf    []byte
	off    int
	typ    Type
	stream int64
	err    error
}

func (d *decoder) fail(field string, off int, format string, args ...any) {
	if d.err != nil {
		return
	}
	d.err = &FrameError{Type: d.typ, Field: field, Offset: off, StreamOffset: d.stream,
		Detail: fmt.Sprintf(format, args...), Err: ErrMalformed}
}

func (d *decoder) remaining() int { return len(d.buf) - d.off }

func (d *decoder) take(field string, n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > d.remaining() {
		d.fail(field, d.off, "need %d bytes, %d left", n, d.remaining())
		return nil
	}
	b := d.buf[d.off : d.off+n : d.off+n]
	d.off += n
	return b
}

func (d *decoder) u8(field string) uint8 {
	if b := d.take(field, 1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u32(field string) uint32 {
	if b := d.take(field, 4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64(field string) uint64 {
	if b := d.take(field, 8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) i64(field string) int64 { return int64(d.u64(field)) }

func (d *decoder) boolean(field string) bool {
	off := d.off
	switch v := d.u8(field); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(field, off, "boolean byte is %d, want 0 or 1", v)
		return false
	}
}

// lengthPrefixed reads a u32 length and that many bytes, refusing lengths
// over max before slicing. The result aliases the payload.
func (d *decoder) lengthPrefixed(field string, max int) []byte {
	off := d.off
	n := d.u32(field + " length")
	if d.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		d.fail(field, off, "length %d over the limit of %d", n, max)
		return nil
	}
	return d.take(field, int(n))
}

func (d *decoder) str(field string, max int) string {
	return string(d.lengthPrefixed(field, max))
}

// bytesCopy returns a length-prefixed field as a fresh slice (nil if empty).
func (d *decoder) bytesCopy(field string, max int) []byte {
	b := d.lengthPrefixed(field, max)
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// count reads a u32 element count and checks that count elements of at
// least minSize bytes each can fit in what is left, so callers may allocate
// count elements without trusting the peer.
func (d *decoder) count(field string, minSize, max int) int {
	off := d.off
	n := d.u32(field + " count")
	if d.err != nil {
		return 0
	}
	if uint64(n) > uint64(max) {
		d.fail(field, off, "count %d over the limit of %d", n, max)
		return 0
	}
	if uint64(n)*uint64(minSize) > uint64(d.remaining()) {
		d.fail(field, off, "count %d needs at least %d bytes, %d left", n, uint64(n)*uint64(minSize), d.remaining())
		return 0
	}
	return int(n)
}

func (d *decoder) finish() {
	if d.err == nil && d.remaining() != 0 {
		d.fail("payload", d.off, "%d trailing bytes", d.remaining())
	}
}

// Encoding helpers: little-endian appends. Bounds are checked by callers.

func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }
func appendI64(b []byte, v int64) []byte  { return binary.LittleEndian.AppendUint64(b, uint64(v)) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendBytes(b []byte, t Type, field string, v []byte, max int) ([]byte, error) {
	if len(v) > max {
		return b, fmt.Errorf("encoding %s: %s is %d bytes, over the limit of %d: %w", t, field, len(v), max, ErrInvalidMessage)
	}
	b = appendU32(b, uint32(len(v)))
	return append(b, v...), nil
}

func appendString(b []byte, t Type, field, v string, max int) ([]byte, error) {
	if len(v) > max {
		return b, fmt.Errorf("encoding %s: %s is %d bytes, over the limit of %d: %w", t, field, len(v), max, ErrInvalidMessage)
	}
	b = appendU32(b, uint32(len(v)))
	return append(b, v...), nil
}

func checkCount(t Type, field string, n, max int) error {
	if n > max || n > math.MaxUint32 {
		return fmt.Errorf("encoding %s: %d %s, over the limit of %d: %w", t, n, field, max, ErrInvalidMessage)
	}
	return nil
}
