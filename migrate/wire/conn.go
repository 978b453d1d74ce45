package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/migtrace/migtrace/tracing/schema"
)

// DefaultIOTimeout bounds every Send and Recv unless WithIOTimeout says
// otherwise.
const DefaultIOTimeout = 30 * time.Second

// Option configures a Conn.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	ioTimeout   time.Duration
	maxPayload  int
	bytesPerSec int64
}

// WithIOTimeout bounds each Send and each Recv: the read or write must
// finish within d (or by the context's deadline, if earlier). d ≤ 0 leaves
// only the context's deadline.
func WithIOTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.ioTimeout = d })
}

// WithMaxPayload lowers the largest payload the Conn sends or accepts.
// Values ≤ 0 or above MaxPayload mean MaxPayload.
func WithMaxPayload(n int) Option {
	return optionFunc(func(c *config) { c.maxPayload = n })
}

// WithMaxBandwidth caps what Send writes to bytesPerSec, frame headers
// included, as a token bucket that admits about 50 ms of traffic at once.
// Values ≤ 0 mean no cap.
func WithMaxBandwidth(bytesPerSec int64) Option {
	return optionFunc(func(c *config) { c.bytesPerSec = bytesPerSec })
}

// Conn exchanges framed messages over a byte stream.
//
// Send and Recv may run at the same time (one goroutine sending while
// another receives); concurrent Sends are serialised, as are concurrent
// Recvs. Each sets a deadline on the underlying connection from the I/O
// timeout and ctx's deadline, and cancelling ctx aborts a blocked read or
// write. After an I/O error that may have cut a frame (including a timeout
// or a cancelled context mid-frame), the direction that failed is unusable:
// every later Send (or Recv) returns the same error. A Recv that times out
// before any byte of a frame arrived, and a decoding error on a complete
// frame, leave the Conn usable.
type Conn struct {
	nc         net.Conn
	ioTimeout  atomic.Int64
	maxPayload int
	// lim caps Send's rate; nil until a cap is set, so an uncapped Conn
	// pays nothing for it.
	lim atomic.Pointer[limiter]
	// uncapped is set once the cap no longer applies (LiftBandwidthCap).
	uncapped atomic.Bool

	sendMu    sync.Mutex
	wbuf      []byte
	sendErr   error
	sendWatch watch

	recvMu    sync.Mutex
	hdr       [HeaderSize]byte
	rbuf      []byte
	recvErr   error
	recvWatch watch
	dec       decoder
	pageData  PageData
	pageList  PageList
	zeroPages ZeroPages
	sink      PageSink

	sent, received atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// NewConn wraps c. The Conn owns c from now on: close it with Conn.Close.
func NewConn(c net.Conn, opts ...Option) *Conn {
	cfg := config{ioTimeout: DefaultIOTimeout, maxPayload: MaxPayload}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.maxPayload <= 0 || cfg.maxPayload > MaxPayload {
		cfg.maxPayload = MaxPayload
	}
	wc := &Conn{nc: c, maxPayload: cfg.maxPayload, wbuf: make([]byte, 0, 256)}
	wc.ioTimeout.Store(int64(cfg.ioTimeout))
	if cfg.bytesPerSec > 0 {
		wc.lim.Store(newLimiter(cfg.bytesPerSec))
	}
	return wc
}

// SetMaxBandwidth changes the cap on what Send writes to bytesPerSec
// (≤ 0: no cap), as WithMaxBandwidth sets it. It applies at once, to a
// Send waiting out its frame's debt as well as to later ones, and never
// waits for a Send in progress.
func (c *Conn) SetMaxBandwidth(bytesPerSec int64) {
	if l := c.lim.Load(); l != nil {
		l.setRate(bytesPerSec)
		return
	}
	if bytesPerSec > 0 {
		// Two callers racing here both store a limiter; either is right.
		c.lim.CompareAndSwap(nil, newLimiter(bytesPerSec))
	}
}

// LiftBandwidthCap makes later Sends ignore the bandwidth cap
// (WithMaxBandwidth). A source lifts it once its guest is paused, as QEMU
// does when it completes a migration: the cap shares the link while the
// guest runs, and once the guest has stopped every millisecond on the
// link is downtime.
func (c *Conn) LiftBandwidthCap() { c.uncapped.Store(true) }

// SetIOTimeout changes the per-operation timeout for later Sends and Recvs.
func (c *Conn) SetIOTimeout(d time.Duration) { c.ioTimeout.Store(int64(d)) }

// NetConn returns the underlying connection, e.g. to read TLS state.
func (c *Conn) NetConn() net.Conn { return c.nc }

// BytesSent is the number of bytes written so far, frame headers included.
func (c *Conn) BytesSent() uint64 { return c.sent.Load() }

// BytesReceived is the number of bytes read so far, frame headers included.
func (c *Conn) BytesReceived() uint64 { return c.received.Load() }

// Close closes the underlying connection, aborting blocked operations. It is
// idempotent.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.nc.Close()
		// The close unblocks any Send or Recv, so these locks come free.
		c.sendMu.Lock()
		c.sendWatch.disarm()
		c.sendMu.Unlock()
		c.recvMu.Lock()
		c.recvWatch.disarm()
		c.recvMu.Unlock()
	})
	return c.closeErr
}

// Send writes m as one frame, with one write. It does not retain m, which may
// be reused once Send returns. A PageData from NewPageData (or a run of its
// buffer) is framed in place, without copying its pages; any other is
// copied into a reused buffer first. A message that cannot be encoded is
// refused (ErrInvalidMessage or ErrFrameTooLarge) without touching the
// stream.
func (c *Conn) Send(ctx context.Context, m Message) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.sendErr != nil {
		return c.sendErr
	}
	t := m.Type()
	b, err := c.encode(m)
	if err != nil {
		return err
	}
	n := len(b) - HeaderSize
	if n > c.maxPayload {
		return fmt.Errorf("sending %s: %d-byte payload over the %d-byte limit: %w", t, n, c.maxPayload, ErrFrameTooLarge)
	}
	putHeader(b, t, n)

	if lim := c.lim.Load(); lim != nil && !c.uncapped.Load() {
		if err := lim.wait(ctx, len(b)); err != nil {
			return fmt.Errorf("sending %s: waiting for bandwidth: %w", t, err)
		}
	}
	if err := c.begin(ctx, &c.sendWatch, false); err != nil {
		return fmt.Errorf("sending %s: %w", t, err)
	}
	w, err := c.nc.Write(b)
	written := int64(w)
	c.sent.Add(uint64(written))
	if err != nil {
		c.sendErr = c.ioError(ctx, err, "sending %s (%d of %d bytes written)", t, written, len(b))
		return c.sendErr
	}
	return nil
}

// encode returns m as one contiguous frame, header included. Frames go out
// in a single write: on loopback, splitting one (a separate header write,
// writev, MSG_MORE) measured at 0.3 to 0.6 of a raw copy's throughput, as
// the receiver wakes for each piece, while one contiguous write with a copy
// measured about 0.65 and without a copy about 0.9. A PageData from
// NewPageData has room for the head in front of its pages and needs no
// copy; any other message is encoded into the Conn's reused buffer.
func (c *Conn) encode(m Message) ([]byte, error) {
	switch m := m.(type) {
	case *PageData:
		if f := m.frameInPlace(); f != nil {
			if _, err := m.appendHead(f[:HeaderSize]); err != nil {
				return nil, err
			}
			return f, nil
		}
	case *PageList:
		if err := m.check(); err != nil {
			return nil, err
		}
		if f := m.frameInPlace(); f != nil {
			return f, nil
		}
	}
	b, err := m.appendPayload(c.wbuf[:HeaderSize])
	c.wbuf = b[:0]
	return b, err
}

// SendError sends an Error message for phase with err's text, cut to
// MaxErrorMessage. It is how a failing side tells its peer why.
func (c *Conn) SendError(ctx context.Context, phase schema.Phase, err error) error {
	msg := err.Error()
	if len(msg) > MaxErrorMessage {
		msg = strings.ToValidUTF8(msg[:MaxErrorMessage], "")
	}
	return c.Send(ctx, &Error{Phase: uint8(phase), Message: msg})
}

// Recv reads the next message. A *PageData or *ZeroPages it returns belongs
// to the Conn and stays valid only until the next Recv; every other message
// owns its memory. An Error message is returned as a *Error like any other;
// Expect turns it into a *RemoteError.
func (c *Conn) Recv(ctx context.Context) (Message, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if c.recvErr != nil {
		return nil, c.recvErr
	}
	m, err, fatal := c.recv(ctx)
	if fatal {
		c.recvErr = err
	}
	return m, err
}

func (c *Conn) recv(ctx context.Context) (_ Message, _ error, fatal bool) {
	if err := c.begin(ctx, &c.recvWatch, true); err != nil {
		return nil, fmt.Errorf("receiving message: %w", err), false // nothing read yet
	}
	start := int64(c.received.Load())
	n, err := io.ReadFull(c.nc, c.hdr[:])
	c.received.Add(uint64(n))
	if err != nil {
		switch {
		case n == 0 && errors.Is(err, io.EOF):
			return nil, fmt.Errorf("receiving message: peer closed the connection: %w", io.EOF), true
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, &FrameError{Field: "header", Offset: -1, StreamOffset: start,
				Detail: fmt.Sprintf("stream ended after %d of %d header bytes", n, HeaderSize),
				Err:    ErrMalformed, Cause: io.ErrUnexpectedEOF}, true
		}
		// With no byte read the stream is still in step and a later Recv
		// may succeed; a partial header is lost for good.
		return nil, c.ioError(ctx, err, "receiving frame header (%d of %d bytes read)", n, HeaderSize), n > 0
	}
	t := Type(c.hdr[0])
	length := binary.BigEndian.Uint32(c.hdr[4:8])
	if c.hdr[1] != 0 || c.hdr[2] != 0 || c.hdr[3] != 0 {
		return nil, &FrameError{Type: t, Field: "header", Offset: -1, StreamOffset: start,
			Detail: fmt.Sprintf("flags %#02x and reserved %#04x must be zero", c.hdr[1], binary.BigEndian.Uint16(c.hdr[2:4])),
			Err:    ErrMalformed}, true
	}
	// Check the claimed length before reading or allocating anything.
	if uint64(length) > uint64(c.maxPayload) {
		return nil, &FrameError{Type: t, Field: "header", Offset: -1, StreamOffset: start,
			Detail: fmt.Sprintf("payload length %d over the %d-byte limit", length, c.maxPayload),
			Err:    ErrFrameTooLarge}, true
	}
	if !t.Valid() {
		return nil, &FrameError{Type: t, Field: "header", Offset: -1, StreamOffset: start,
			Detail: fmt.Sprintf("type code %d", uint8(t)), Err: ErrUnknownType}, true
	}
	if cap(c.rbuf) < int(length) {
		c.rbuf = make([]byte, length, min(max(int(length), 2*cap(c.rbuf)), c.maxPayload))
	}
	payload := c.rbuf[:length]
	read := 0 // of payload, already
	if t == TypePageData && c.sink != nil && length >= pageDataFixed {
		m, n, err, fatal := c.recvPagesToSink(ctx, start, length, payload)
		if m != nil || err != nil {
			return m, err, fatal
		}
		read = n // the sink declined the pages: they go to rbuf
	}
	n, err = io.ReadFull(c.nc, payload[read:])
	n += read
	c.received.Add(uint64(n - read))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, &FrameError{Type: t, Field: "payload", Offset: n, StreamOffset: start,
				Detail: fmt.Sprintf("stream ended after %d of %d payload bytes", n, length),
				Err:    ErrMalformed, Cause: io.ErrUnexpectedEOF}, true
		}
		return nil, c.ioError(ctx, err, "receiving %s payload (%d of %d bytes read)", t, n, length), true
	}
	if want, got := binary.BigEndian.Uint32(c.hdr[8:12]), frameChecksum(t, c.hdr[:8], payload); got != want {
		// The frame arrived whole but not as it was sent; nothing after it
		// can be trusted either.
		return nil, &FrameError{Type: t, Field: "checksum", Offset: -1, StreamOffset: start,
			Detail: fmt.Sprintf("CRC-32C %#08x, header says %#08x", got, want), Err: ErrChecksum}, true
	}
	var m Message
	switch t {
	case TypePageData:
		m = &c.pageData
	case TypeZeroPages:
		m = &c.zeroPages
	case TypePageList:
		m = &c.pageList
	default:
		m = newMessage(t)
	}
	if err := c.dec.decode(m, payload, start); err != nil {
		return nil, err, false
	}
	return m, nil, false
}

// PageSink says where the pages of a PageData go: Count pages of guest
// memory from page First, or nil to leave them in the Conn's buffer.
type PageSink func(first uint64, count uint32) []byte

// SetPageSink makes Recv read the pages of each PageData straight into the
// memory sink returns for them, rather than into the Conn's buffer for the
// caller to copy: the returned PageData's Data is then that memory. Recv
// checks the frame's header and First and Count (all the frame checksum
// covers) before it asks the sink, so a sink sees only a well-formed run;
// whether the run lies in guest memory is the sink's to check. After a
// failed Recv the memory may hold part of the pages. nil removes the sink.
func (c *Conn) SetPageSink(sink PageSink) {
	c.recvMu.Lock()
	c.sink = sink
	c.recvMu.Unlock()
}

// recvPagesToSink reads a PageData whose header recv has checked: its
// fixed fields into payload, then, if they are sound and the sink takes
// the run, its pages into the sink's memory. It returns the message, or
// a nil message and how many payload bytes it read when the pages are to
// go to payload after all.
func (c *Conn) recvPagesToSink(ctx context.Context, start int64, length uint32, payload []byte) (_ Message, read int, _ error, fatal bool) {
	head := payload[:pageDataFixed]
	n, err := io.ReadFull(c.nc, head)
	c.received.Add(uint64(n))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, 0, &FrameError{Type: TypePageData, Field: "payload", Offset: n, StreamOffset: start,
				Detail: fmt.Sprintf("stream ended after %d of %d payload bytes", n, length),
				Err:    ErrMalformed, Cause: io.ErrUnexpectedEOF}, true
		}
		return nil, 0, c.ioError(ctx, err, "receiving PageData payload (%d of %d bytes read)", n, length), true
	}
	first, count := binary.LittleEndian.Uint64(head), binary.LittleEndian.Uint32(head[8:])
	if count == 0 || count > MaxPagesPerFrame || first > math.MaxUint64-uint64(count) ||
		uint64(length) != pageDataFixed+uint64(count)*PageSize {
		return nil, n, nil, false // the decoder says what is wrong
	}
	// The checksum covers the header and these fields, not the pages:
	// check it before anything is written where the sink points.
	if want, got := binary.BigEndian.Uint32(c.hdr[8:12]), frameChecksum(TypePageData, c.hdr[:8], head); got != want {
		return nil, n, &FrameError{Type: TypePageData, Field: "checksum", Offset: -1, StreamOffset: start,
			Detail: fmt.Sprintf("CRC-32C %#08x, header says %#08x", got, want), Err: ErrChecksum}, true
	}
	dst := c.sink(first, count)
	if uint64(len(dst)) != uint64(count)*PageSize {
		return nil, n, nil, false
	}
	m, err := io.ReadFull(c.nc, dst)
	c.received.Add(uint64(m))
	if err != nil {
		n += m
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, 0, &FrameError{Type: TypePageData, Field: "payload", Offset: n, StreamOffset: start,
				Detail: fmt.Sprintf("stream ended after %d of %d payload bytes", n, length),
				Err:    ErrMalformed, Cause: io.ErrUnexpectedEOF}, true
		}
		return nil, 0, c.ioError(ctx, err, "receiving PageData payload (%d of %d bytes read)", n, length), true
	}
	c.pageData = PageData{First: first, Count: count, Data: dst}
	return &c.pageData, 0, nil, false
}

// Expect receives the next message and returns it as a T. If the peer sent
// an Error instead, the error is a *RemoteError; any other message gives an
// *UnexpectedMessageError (ErrUnexpectedMessage) naming both types.
func Expect[T Message](ctx context.Context, c *Conn) (T, error) {
	var zero T
	m, err := c.Recv(ctx)
	if err != nil {
		return zero, err
	}
	if v, ok := m.(T); ok {
		return v, nil
	}
	if e, ok := m.(*Error); ok {
		return zero, &RemoteError{Phase: schema.Phase(e.Phase), Message: e.Message}
	}
	return zero, &UnexpectedMessageError{Got: m.Type(), Want: zero.Type()}
}

// begin prepares one read or write: it refuses a finished ctx, makes sure
// ctx's cancellation will cut the operation short, and sets the deadline.
func (c *Conn) begin(ctx context.Context, w *watch, read bool) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	w.arm(ctx, c.nc, read)
	var deadline time.Time
	if d := time.Duration(c.ioTimeout.Load()); d > 0 {
		deadline = time.Now().Add(d)
	}
	if cd, ok := ctx.Deadline(); ok && (deadline.IsZero() || cd.Before(deadline)) {
		deadline = cd
	}
	var err error
	if read {
		err = c.nc.SetReadDeadline(deadline)
	} else {
		err = c.nc.SetWriteDeadline(deadline)
	}
	if err != nil {
		return fmt.Errorf("setting deadline: %w", err)
	}
	// A cancellation that raced the deadline above may have been
	// overwritten by it; the context still knows.
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// ioError explains a failed read or write: the context's end if that caused
// it, else the I/O error with the timeout in force.
func (c *Conn) ioError(ctx context.Context, err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	if errors.Is(err, ErrTimeout) {
		// The connection's deadline may fire a moment before the context's
		// own timer marks it done.
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return fmt.Errorf("%s: %w", what, context.DeadlineExceeded)
		}
		if d := time.Duration(c.ioTimeout.Load()); d > 0 {
			return fmt.Errorf("%s: no progress within the %v I/O timeout or the context deadline: %w", what, d, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// watch cuts a blocked read or write short when a context ends, by setting
// a deadline in the past. It stays registered across operations that share
// a context (recognised by its Done channel), so steady-state traffic does
// not allocate a callback per frame.
type watch struct {
	done  <-chan struct{}
	stop  func() bool
	fired chan struct{}
}

var pastDeadline = time.Unix(1, 0)

func (w *watch) arm(ctx context.Context, nc net.Conn, read bool) {
	d := ctx.Done()
	if d == w.done && w.stop != nil {
		return
	}
	w.disarm()
	if d == nil {
		return // never cancelled
	}
	fired := make(chan struct{})
	w.stop = context.AfterFunc(ctx, func() {
		// Best effort: the conn may be closed already.
		if read {
			_ = nc.SetReadDeadline(pastDeadline)
		} else {
			_ = nc.SetWriteDeadline(pastDeadline)
		}
		close(fired)
	})
	w.done, w.fired = d, fired
}

// disarm unregisters the callback, waiting for it if it already started so
// that it cannot clobber a deadline set afterwards.
func (w *watch) disarm() {
	if w.stop == nil {
		return
	}
	if !w.stop() {
		<-w.fired
	}
	w.done, w.stop, w.fired = nil, nil, nil
}
