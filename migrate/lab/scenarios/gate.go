package scenarios

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/wire"
)

// Direction is the way a frame travels through a Gate.
type Direction int

// The directions: the destination dials the source, so its side of the
// gate is the client's.
const (
	ToSource Direction = iota
	ToDestination
)

func (d Direction) String() string {
	if d == ToSource {
		return "to source"
	}
	return "to destination"
}

// Gate is a TCP proxy that forwards everything and shows a test each frame
// of a migration stream (docs/protocol.md §3) as it passes, before it
// forwards it: a test can partition the path at an exact message, with
// Hold. Other connections (the servers' handoff queries) pass untouched,
// but are held too.
type Gate struct {
	ln      net.Listener
	dial    func(ctx context.Context) (net.Conn, error)
	onFrame func(Direction, wire.Type)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool
	// held, while the gate holds data, is closed by Release.
	held chan struct{}
}

// Hold stops data through the gate, both ways and on every connection,
// without closing any: what is sent meanwhile waits in the gate, as it
// would in TCP's buffers across a partition. Called from onFrame, it
// holds the frame being shown.
func (g *Gate) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held == nil {
		g.held = make(chan struct{})
	}
}

// Release lets held data flow again, as TCP delivers it once a partition
// heals.
func (g *Gate) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held != nil {
		close(g.held)
		g.held = nil
	}
}

// waitOpen returns once the gate does not hold data, false if the gate
// closed first.
func (g *Gate) waitOpen() bool {
	for {
		g.mu.Lock()
		held := g.held
		g.mu.Unlock()
		if held == nil {
			return g.ctx.Err() == nil
		}
		select {
		case <-held:
		case <-g.ctx.Done():
			return false
		}
	}
}

// NewGate serves ln, dialling upstream with dial for each connection it
// accepts, and calls onFrame, from the goroutine forwarding that
// direction, with each stream frame's type before forwarding the frame.
func NewGate(ln net.Listener, dial func(ctx context.Context) (net.Conn, error), onFrame func(Direction, wire.Type)) *Gate {
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gate{ln: ln, dial: dial, onFrame: onFrame, ctx: ctx, cancel: cancel, conns: make(map[net.Conn]bool)}
	g.wg.Add(1)
	go g.accept()
	return g
}

// Addr is where clients reach the gate.
func (g *Gate) Addr() string { return g.ln.Addr().String() }

// Close stops the gate: its listener and every connection close, and it
// waits for its goroutines.
func (g *Gate) Close() error {
	g.cancel()
	err := g.ln.Close()
	g.mu.Lock()
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
	return err
}

// track registers c to be closed by Close; false once the gate is closed.
func (g *Gate) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ctx.Err() != nil {
		c.Close()
		return false
	}
	g.conns[c] = true
	return true
}

func (g *Gate) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	c.Close()
}

func (g *Gate) accept() {
	defer g.wg.Done()
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		if !g.track(c) {
			return
		}
		g.wg.Add(1)
		go g.serve(c)
	}
}

// gateDialTimeout bounds a dial upstream: across a partition a SYN is
// lost, and the servers' handoff queries give up after 2 s anyway.
const gateDialTimeout = 3 * time.Second

// serve forwards one connection.
func (g *Gate) serve(client net.Conn) {
	defer g.wg.Done()
	defer g.untrack(client)
	ctx, cancel := context.WithTimeout(g.ctx, gateDialTimeout)
	up, err := g.dial(ctx)
	cancel()
	if err != nil {
		return
	}
	if !g.track(up) {
		return
	}
	defer g.untrack(up)
	stream := newStreamFlag()
	done := make(chan struct{}, 2)
	go func() {
		g.pipe(up, client, newFrameScanner(ToSource, stream, true))
		// Unblocks the other direction if the request line never came.
		stream.set(false)
		done <- struct{}{}
	}()
	go func() {
		g.pipe(client, up, newFrameScanner(ToDestination, stream, false))
		done <- struct{}{}
	}()
	// One direction ending ends the connection, as a TCP proxy's would.
	<-done
	client.Close()
	up.Close()
	<-done
}

// pipe copies src to dst, cutting it at frame boundaries so that onFrame
// sees each frame before any of it is forwarded.
func (g *Gate) pipe(dst, src net.Conn, sc *frameScanner) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			werr := sc.feed(buf[:n], func(b []byte) error {
				if !g.waitOpen() {
					return net.ErrClosed
				}
				_, err := dst.Write(b)
				return err
			}, g.onFrame)
			if werr != nil {
				return
			}
		}
		if err != nil {
			if c, ok := dst.(interface{ CloseWrite() error }); ok && errors.Is(err, io.EOF) {
				_ = c.CloseWrite()
			}
			return
		}
	}
}

// streamFlag is shared by a connection's two scanners: the client's
// request line says whether it is a migration stream, and the server's
// side waits for that verdict.
type streamFlag struct {
	once    sync.Once
	decided chan struct{}
	is      bool
}

func newStreamFlag() *streamFlag { return &streamFlag{decided: make(chan struct{})} }

func (f *streamFlag) set(is bool) {
	f.once.Do(func() {
		f.is = is
		close(f.decided)
	})
}

// frameScanner follows one direction of a connection: HTTP headers (the
// upgrade request or its 101 answer), then frames of a 12-byte header
// whose bytes 4 to 7 are the payload's length, big-endian.
type frameScanner struct {
	dir    Direction
	stream *streamFlag
	client bool // this direction carries the request line

	state   scanState
	line    []byte // the request line so far (client side)
	sawLine bool   // enough of it to decide
	crlf    int    // how much of "\r\n\r\n" ends the data so far
	hdr     []byte // a frame header so far
	payload uint32 // payload bytes of the current frame still to forward
}

type scanState int

const (
	scanHeaders scanState = iota // HTTP headers
	scanFrames
	scanPassThrough // not a migration stream
)

func newFrameScanner(dir Direction, stream *streamFlag, client bool) *frameScanner {
	return &frameScanner{dir: dir, stream: stream, client: client}
}

// streamRequest is the request line that opens a migration stream.
var streamRequest = []byte("GET " + server.StreamPath)

// feed takes the next bytes of the direction, forwards them with write,
// and calls onFrame with each frame's type before the frame's first byte
// is forwarded. A frame header cut across reads is held until complete.
func (s *frameScanner) feed(b []byte, write func([]byte) error, onFrame func(Direction, wire.Type)) error {
	for len(b) > 0 {
		switch s.state {
		case scanPassThrough:
			return write(b)
		case scanHeaders:
			if s.client && !s.sawLine {
				// The request line's start says whether this connection
				// is a migration stream.
				take := min(len(streamRequest)-len(s.line), len(b))
				s.line = append(s.line, b[:take]...)
				if len(s.line) == len(streamRequest) || !bytes.HasPrefix(streamRequest, s.line) {
					s.sawLine = true
					s.stream.set(bytes.Equal(s.line, streamRequest))
				}
			}
			if !s.client || s.sawLine {
				// The server answers only once the request is in, so
				// the client's side has decided by then.
				<-s.stream.decided
				if !s.stream.is {
					s.state = scanPassThrough
					continue
				}
			}
			// Forward through the end of the headers.
			i := 0
			for i < len(b) && s.crlf < 4 {
				if b[i] == "\r\n\r\n"[s.crlf] {
					s.crlf++
				} else if b[i] == '\r' {
					s.crlf = 1
				} else {
					s.crlf = 0
				}
				i++
			}
			if err := write(b[:i]); err != nil {
				return err
			}
			b = b[i:]
			if s.crlf == 4 {
				s.state = scanFrames
			}
		case scanFrames:
			if s.payload > 0 {
				n := min(int(s.payload), len(b))
				if err := write(b[:n]); err != nil {
					return err
				}
				s.payload -= uint32(n)
				b = b[n:]
				continue
			}
			take := min(wire.HeaderSize-len(s.hdr), len(b))
			s.hdr = append(s.hdr, b[:take]...)
			b = b[take:]
			if len(s.hdr) < wire.HeaderSize {
				continue // held until the rest arrives
			}
			if onFrame != nil {
				onFrame(s.dir, wire.Type(s.hdr[0]))
			}
			if err := write(s.hdr); err != nil {
				return err
			}
			s.payload = binary.BigEndian.Uint32(s.hdr[4:8])
			s.hdr = s.hdr[:0]
		}
	}
	return nil
}
