package scenarios

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/wire"
)

// readHeaders reads an HTTP head byte by byte, so that nothing after it
// is consumed.
func readHeaders(c net.Conn) (string, error) {
	var head []byte
	b := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := io.ReadFull(c, b); err != nil {
			return string(head), err
		}
		head = append(head, b[0])
	}
	return string(head), nil
}

type seen struct {
	dir Direction
	typ wire.Type
}

// The gate shows each frame of a migration stream, both ways, before it
// forwards any of it, however the bytes are cut into reads; a connection
// that is not a migration stream passes untouched.
func TestGateShowsFramesBeforeForwarding(t *testing.T) {
	ctx := t.Context()
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer upLn.Close()
	gateLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		frames []seen
	)
	var g *Gate
	g = NewGate(gateLn, func(ctx context.Context) (net.Conn, error) {
		return new(net.Dialer).DialContext(ctx, "tcp", upLn.Addr().String())
	}, func(d Direction, typ wire.Type) {
		mu.Lock()
		frames = append(frames, seen{d, typ})
		mu.Unlock()
		if typ == wire.TypeHandoff {
			g.Hold() // none of it may reach the client until Release
		}
	})
	defer g.Close()

	// The source's side: answers the upgrade, then speaks frames.
	srcErr := make(chan error, 1)
	go func() {
		srcErr <- func() error {
			c, err := upLn.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := readHeaders(c); err != nil {
				return err
			}
			if _, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: migtrace\r\nConnection: Upgrade\r\n\r\n"); err != nil {
				return err
			}
			wc := wire.NewConn(c)
			for _, want := range []wire.Type{wire.TypeHello, wire.TypeClockProbe} {
				m, err := wc.Recv(ctx)
				if err != nil || m.Type() != want {
					return errors.Join(err, errors.New("source: got "+m.Type().String()+", want "+want.String()))
				}
			}
			pd := wire.NewPageData(256) // 1 MiB: many reads
			pd.First = 0
			for i := range pd.Data {
				pd.Data[i] = byte(i)
			}
			for _, m := range []wire.Message{pd, &wire.Finish{}, &wire.Handoff{}} {
				if err := wc.Send(ctx, m); err != nil {
					return err
				}
			}
			_, err = wc.Recv(ctx) // the client's Resumed, or its end
			return err
		}()
	}()

	c, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /v1/migrate/stream?id=x HTTP/1.1\r\nHost: src\r\nUpgrade: migtrace\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if head, err := readHeaders(c); err != nil || !strings.HasPrefix(head, "HTTP/1.1 101") {
		t.Fatalf("upgrade answer %q, %v", head, err)
	}
	wc := wire.NewConn(c, wire.WithIOTimeout(5*time.Second))
	for _, m := range []wire.Message{&wire.Hello{Versions: []uint32{1}}, &wire.ClockProbe{Seq: 1, T1: 2}} {
		if err := wc.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []wire.Type{wire.TypePageData, wire.TypeFinish} {
		m, err := wc.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type() != want {
			t.Fatalf("destination got %v, want %v", m.Type(), want)
		}
		if pd, ok := m.(*wire.PageData); ok && (pd.Count != 256 || pd.Data[4097] != byte(4097%256)) {
			t.Errorf("page data garbled through the gate: %d pages", pd.Count)
		}
	}
	// onFrame held the gate at the Handoff: not one byte of it passed.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read %d bytes (%v) while the gate held the Handoff frame", n, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	// Held both ways: the client's Resumed waits in the gate too.
	if err := wc.Send(ctx, &wire.Resumed{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-srcErr:
		t.Fatalf("the source side ended (%v) while the gate held its stream", err)
	case <-time.After(200 * time.Millisecond):
	}
	g.Release()
	if m, err := wc.Recv(ctx); err != nil || m.Type() != wire.TypeHandoff {
		t.Fatalf("after the release: %v, %v; want the Handoff", m, err)
	}
	if err := <-srcErr; err != nil {
		t.Fatalf("source side: %v", err)
	}
	mu.Lock()
	got := append([]seen(nil), frames...)
	mu.Unlock()
	want := []seen{
		{ToSource, wire.TypeHello}, {ToSource, wire.TypeClockProbe},
		{ToDestination, wire.TypePageData}, {ToDestination, wire.TypeFinish}, {ToDestination, wire.TypeHandoff},
		{ToSource, wire.TypeResumed},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("frames seen %v, want %v", got, want)
	}

	// Not a migration stream: bytes that would read as frames pass, and
	// onFrame hears of none of them.
	mu.Lock()
	frames = nil
	mu.Unlock()
	go func() {
		c, err := upLn.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = readHeaders(c)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n\x13\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	}()
	q, err := net.Dial("tcp", g.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := io.WriteString(q, "GET /v1/migrations/x HTTP/1.1\r\nHost: src\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(q)
	if err != nil || !strings.HasSuffix(string(body), "\r\n\r\n\x13\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00") {
		t.Errorf("query answer %q, %v", body, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(frames) != 0 {
		t.Errorf("frames seen on a query: %v", frames)
	}
}

// The scanner cuts one direction's bytes at frame starts whatever the
// reads: one byte at a time, the request line included.
func TestFrameScannerByteByByte(t *testing.T) {
	var stream []byte
	stream = append(stream, "GET /v1/migrate/stream?id=1 HTTP/1.1\r\n\r\n"...)
	frame := func(typ wire.Type, payload int) {
		h := make([]byte, wire.HeaderSize+payload)
		h[0] = byte(typ)
		h[4], h[5], h[6], h[7] = byte(payload>>24), byte(payload>>16), byte(payload>>8), byte(payload)
		stream = append(stream, h...)
	}
	frame(wire.TypeHello, 8)
	frame(wire.TypeOkay, 0)
	frame(wire.TypeRoundAck, 12)
	sc := newFrameScanner(ToSource, newStreamFlag(), true)
	var out []byte
	var got []wire.Type
	for i := range stream {
		err := sc.feed(stream[i:i+1], func(b []byte) error {
			out = append(out, b...)
			return nil
		}, func(_ Direction, typ wire.Type) { got = append(got, typ) })
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(out) != string(stream) {
		t.Errorf("forwarded %d bytes, want the %d fed", len(out), len(stream))
	}
	if want := []wire.Type{wire.TypeHello, wire.TypeOkay, wire.TypeRoundAck}; !reflect.DeepEqual(got, want) {
		t.Errorf("frames %v, want %v", got, want)
	}
}
