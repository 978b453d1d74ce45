package lab_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/lab"
)

// busyAttempts is how often a measurement that a busy machine can spoil
// (a rate too low, delays too long) is taken before it counts as a
// failure; what no load can cause (a rate over its cap, a delay under its
// setting) fails at once.
const busyAttempts = 3

// newLab returns a lab serving the migtrace built by TestMain, closed
// when t ends.
func newLab(t *testing.T) *lab.Lab {
	t.Helper()
	return lab.ForTest(t, lab.Config{Binary: migtraceBin})
}

// testCtx bounds one test's lab calls.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func addHost(t *testing.T, ctx context.Context, l *lab.Lab, name string, opts lab.HostOptions) *lab.Host {
	t.Helper()
	h, err := l.AddHost(ctx, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// listen opens a TCP listener on every address of h at port and hands
// each connection to handle in its own goroutine. When t ends it closes
// the listener and every connection (a peer behind a cut link never
// closes its end) and waits for the handlers.
func listen(t *testing.T, ctx context.Context, h *lab.Host, port string, handle func(net.Conn)) {
	t.Helper()
	ln, err := h.Listen(ctx, "tcp", "0.0.0.0:"+port)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// arrival is the byte count received so far at one read.
type arrival struct {
	at    time.Time
	total int64
}

// receiveAll reads c to EOF and returns when each read's bytes arrived.
func receiveAll(c net.Conn) ([]arrival, error) {
	buf := make([]byte, 256<<10)
	var out []arrival
	var total int64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			total += int64(n)
			out = append(out, arrival{time.Now(), total})
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

// rateAfter is the receive rate in bytes/s from when the first quarter of
// the data had arrived to the end: that skips the token bucket's initial
// burst and TCP's slow start.
func rateAfter(arr []arrival) float64 {
	if len(arr) < 2 {
		return 0
	}
	last := arr[len(arr)-1]
	for _, a := range arr {
		if a.total >= last.total/4 {
			d := last.at.Sub(a.at).Seconds()
			if d <= 0 {
				return 0
			}
			return float64(last.total-a.total) / d
		}
	}
	return 0
}

// sendN writes n bytes to c and closes its write side.
func sendN(c net.Conn, n int64) error {
	buf := make([]byte, 64<<10)
	for n > 0 {
		m := min(int64(len(buf)), n)
		if _, err := c.Write(buf[:m]); err != nil {
			return err
		}
		n -= m
	}
	return c.(*net.TCPConn).CloseWrite()
}

// measureRate sends n bytes from `from` to addr (a listener that drains
// with receiveAll and reports on got) and returns the receive rate.
func measureRate(t *testing.T, ctx context.Context, from *lab.Host, addr string, n int64, got <-chan []arrival) float64 {
	t.Helper()
	c, err := from.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := sendN(c, n); err != nil {
		t.Fatal(err)
	}
	select {
	case arr := <-got:
		var total int64
		if len(arr) > 0 {
			total = arr[len(arr)-1].total
		}
		if total != n {
			t.Fatalf("received %d bytes, want %d", total, n)
		}
		return rateAfter(arr)
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	return 0
}
