package servertest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/wire"
)

// Direction is which way a frame travels through a FrameProxy, seen from
// the migration: the source is the server the proxy fronts, the
// destination the client that dialled it.
type Direction int

// The directions.
const (
	ToDestination Direction = iota // source → destination
	ToSource                       // destination → source
)

func (d Direction) String() string {
	if d == ToDestination {
		return "source→destination"
	}
	return "destination→source"
}

// Action is what a FrameProxy does with a frame.
type Action int

// The actions.
const (
	// Forward passes the frame on.
	Forward Action = iota
	// ForwardThenHold passes the frame on, then stops the stream in both
	// directions: nothing more is read or written until Cut.
	ForwardThenHold
	// Hold stops the stream in both directions with this frame undelivered.
	Hold
	// ForwardCorrupted passes the frame on with a byte of its page data
	// flipped, where no frame checksum looks (docs/protocol.md §3): in
	// its last page, of a PageData, and of a PageList the page with the
	// highest number. Other frames pass unchanged.
	ForwardCorrupted
)

// FrameProxy fronts a migtrace server: every connection to it goes to the
// server. API requests pass through untouched; in a migration stream
// (after the upgrade's 101 answer) it reads each frame and asks SetOnFrame's function
// what to do, which is how a test stops a migration at an exact message
// and then kills a process, or cuts the stream.
type FrameProxy struct {
	ln      net.Listener
	target  string
	onFrame atomic.Pointer[func(Direction, wire.Type) Action] // SetOnFrame

	rate atomic.Int64 // SetRate

	mu    sync.Mutex
	conns []net.Conn
	held  bool
	cut   chan struct{} // closed by Cut: held pipes may end
}

// NewFrameProxy starts a proxy on a free loopback port in front of the
// server at target; it closes when the test ends.
func NewFrameProxy(tb testing.TB, target string) *FrameProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &FrameProxy{ln: ln, target: target, cut: make(chan struct{})}
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// SetOnFrame sets what decides each stream frame's fate; without one,
// or with nil, every frame is forwarded. f runs on the proxy's goroutine
// for that direction, so it may block.
func (p *FrameProxy) SetOnFrame(f func(Direction, wire.Type) Action) {
	if f == nil {
		p.onFrame.Store(nil)
		return
	}
	p.onFrame.Store(&f)
}

// SetRate paces each direction's stream frames to at most bytesPerSec
// (≤ 0: no pacing): a slow link, which unlike a source's --max-bandwidth
// nothing lifts when the guest pauses.
func (p *FrameProxy) SetRate(bytesPerSec int64) { p.rate.Store(bytesPerSec) }

// Addr is the address to give in place of the server's.
func (p *FrameProxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting and cuts every connection.
func (p *FrameProxy) Close() {
	p.ln.Close()
	p.Cut()
}

// Cut closes every connection through the proxy so far, held or not.
func (p *FrameProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	select {
	case <-p.cut:
	default:
		close(p.cut)
	}
}

func (p *FrameProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, cs...)
	p.mu.Unlock()
}

func (p *FrameProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client, server)
		go p.pipe(client, server, ToSource)
		go p.pipe(server, client, ToDestination)
	}
}

// pipe copies from → to: the HTTP head as it is, then frames if the head
// was an upgrade (a request with "Upgrade:" from the client, a 101 from
// the server), else the rest as it is.
func (p *FrameProxy) pipe(from, to net.Conn, dir Direction) {
	defer to.Close()
	r := bufio.NewReader(from)
	head, err := readHead(r)
	if len(head) > 0 {
		if _, werr := to.Write(head); werr != nil {
			return
		}
	}
	if err != nil {
		return
	}
	upgrade := bytes.Contains(bytes.ToLower(head), []byte("upgrade: "+wire.UpgradeProtocol)) ||
		bytes.HasPrefix(head, []byte("HTTP/1.1 101"))
	if !upgrade {
		_, _ = io.Copy(to, r)
		return
	}
	hdr := make([]byte, wire.HeaderSize)
	start, sent := time.Now(), int64(0)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return
		}
		payload := make([]byte, binary.BigEndian.Uint32(hdr[4:8]))
		if _, err := io.ReadFull(r, payload); err != nil {
			return
		}
		act := Forward
		if p.isHeld() {
			<-p.cut // a held stream delivers nothing more, and stays open
			return
		}
		if f := p.onFrame.Load(); f != nil {
			act = (*f)(dir, wire.Type(hdr[0]))
		}
		if act == Hold {
			p.hold()
			<-p.cut
			return
		}
		if rate := p.rate.Load(); rate > 0 {
			sent += int64(len(hdr) + len(payload))
			time.Sleep(time.Until(start.Add(time.Duration(float64(sent) / float64(rate) * float64(time.Second)))))
		}
		if act == ForwardCorrupted {
			corruptPages(wire.Type(hdr[0]), payload)
		}
		if _, err := to.Write(append(hdr, payload...)); err != nil {
			return
		}
		if act == ForwardThenHold {
			p.hold()
			<-p.cut
			return
		}
	}
}

// hold stops both directions: the pipes stop reading and writing, and
// the connections stay open, as a stalled peer's would, until Cut.
func (p *FrameProxy) hold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

func (p *FrameProxy) isHeld() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// readHead reads an HTTP message head, up to and including its blank
// line; whatever the peer sends before it closes is returned too.
func readHead(r *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := r.ReadBytes('\n')
		head = append(head, line...)
		if err != nil {
			return head, err
		}
		if len(head) > 64<<10 {
			return head, errors.New("HTTP head too long")
		}
		if bytes.Equal(line, []byte("\r\n")) {
			return head, nil
		}
	}
}

// corruptPages flips a byte of the page data of a PageData or PageList
// payload.
func corruptPages(t wire.Type, payload []byte) {
	switch {
	case t == wire.TypePageData && len(payload) > 12:
		payload[len(payload)-1] ^= 0x5a
	case t == wire.TypePageList && len(payload) > 4+wire.PageSize:
		if n := int(binary.BigEndian.Uint32(payload)); n > 0 && len(payload) >= 4+n*wire.PageSize {
			payload[4+(n-1)*wire.PageSize] ^= 0x5a
		}
	}
}
