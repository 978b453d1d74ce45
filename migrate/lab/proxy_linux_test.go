package lab_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/lab"
)

// stamped is an echo server that records, for each 8-byte message (a
// sequence number), when it arrived; client and server share this
// process's clock, so one-way delays are measured directly.
type stamped struct{ arrived chan time.Time }

func (s stamped) handle(c net.Conn) {
	buf := make([]byte, 8)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		s.arrived <- time.Now()
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// oneWay sends n messages through c one at a time and returns each
// message's client-to-server and server-to-client delays.
func oneWay(t *testing.T, c net.Conn, s stamped, n int) (up, down []time.Duration) {
	t.Helper()
	buf := make([]byte, 8)
	for i := range n {
		binary.BigEndian.PutUint64(buf, uint64(i))
		sent := time.Now()
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		at := <-s.arrived
		up, down = append(up, at.Sub(sent)), append(down, back.Sub(at))
	}
	return up, down
}

func countAtMost(d []time.Duration, hi time.Duration) int {
	n := 0
	for _, x := range d {
		if x <= hi {
			n++
		}
	}
	return n
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// Through a proxy each direction is delayed as asked: latency both ways,
// jitter spread around it, and one-way delays in their direction only.
func TestProxyDelays(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name     string
		opts     lab.ProxyOptions
		up, down time.Duration // one-way delays set (each ± Jitter)
		spread   time.Duration // the least max−min expected of each direction
	}{
		{name: "none"},
		{name: "latency 40ms", opts: lab.ProxyOptions{Latency: 40 * ms}, up: 40 * ms, down: 40 * ms},
		{name: "upstream 60ms", opts: lab.ProxyOptions{UpstreamDelay: 60 * ms}, up: 60 * ms},
		{name: "downstream 60ms", opts: lab.ProxyOptions{DownstreamDelay: 60 * ms}, down: 60 * ms},
		{name: "latency 40ms jitter 20ms", opts: lab.ProxyOptions{Latency: 40 * ms, Jitter: 20 * ms}, up: 40 * ms, down: 40 * ms, spread: 10 * ms},
	}
	ctx := testCtx(t, 60*time.Second)
	l := newLab(t)
	cl := addHost(t, ctx, l, "client", lab.HostOptions{})
	sv := addHost(t, ctx, l, "server", lab.HostOptions{})
	s := stamped{arrived: make(chan time.Time, 1)}
	listen(t, ctx, sv, "9000", s.handle)
	const samples = 16
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := l.Proxy(ctx, cl, sv, 9000, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			c, err := cl.Dial(ctx, "tcp", p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for attempt := 1; ; attempt++ {
				up, down := oneWay(t, c, s, samples)
				t.Logf("attempt %d, %+v: median one-way up %v (range %v..%v), down %v (range %v..%v)", attempt, tc.opts,
					median(up), slices.Min(up), slices.Max(up), median(down), slices.Min(down), slices.Max(down))
				var slow []string
				for _, dir := range []struct {
					name string
					got  []time.Duration
					want time.Duration
				}{{"client->server", up, tc.up}, {"server->client", down, tc.down}} {
					j := tc.opts.Jitter
					// No load makes a delay shorter than set, or jitter
					// narrower.
					if lo := dir.want - j - ms; slices.Min(dir.got) < lo {
						t.Errorf("%s shortest delay %v, want at least %v", dir.name, slices.Min(dir.got), lo)
					}
					if spread := slices.Max(dir.got) - slices.Min(dir.got); spread < tc.spread {
						t.Errorf("%s delays spread %v, want at least %v of jitter", dir.name, spread, tc.spread)
					}
					// A busy machine makes some much longer: bound most.
					hi := dir.want + j + 15*ms
					if within := countAtMost(dir.got, hi); within < len(dir.got)*3/4 {
						slow = append(slow, fmt.Sprintf("%s: %d of %d delays at most %v, want three quarters", dir.name, within, len(dir.got), hi))
					}
					if m := median(dir.got); j == 0 && m > dir.want+15*ms {
						slow = append(slow, fmt.Sprintf("%s median delay %v, want %v (+15ms)", dir.name, m, dir.want))
					}
				}
				if len(slow) == 0 || t.Failed() {
					return
				}
				if attempt == busyAttempts {
					t.Fatalf("in %d attempts: %s", attempt, strings.Join(slow, "; "))
				}
			}
		})
	}
}

// A proxy's Rate caps payload throughput.
func TestProxyRate(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	l := newLab(t)
	cl := addHost(t, ctx, l, "client", lab.HostOptions{})
	sv := addHost(t, ctx, l, "server", lab.HostOptions{})
	got := make(chan []arrival, 1)
	listen(t, ctx, sv, "9000", func(c net.Conn) {
		arr, _ := receiveAll(c)
		got <- arr
	})
	const rate = 1_000_000
	p, err := l.Proxy(ctx, cl, sv, 9000, lab.ProxyOptions{Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		measured := measureRate(t, ctx, cl, p.Addr(), 1_500_000, got)
		t.Logf("attempt %d: proxy rate set %d B/s, measured %.0f B/s", attempt, rate, measured)
		lo, hi := 0.85*rate, 1.05*rate
		if measured > hi {
			t.Fatalf("measured %.0f B/s, over the %.0f allowed", measured, hi)
		}
		if measured >= lo {
			return
		}
		if attempt == busyAttempts {
			t.Fatalf("measured at most %.0f B/s in %d attempts, want at least %.0f", measured, attempt, lo)
		}
	}
}

// Partition holds data and Heal delivers it intact; Timeout drops data
// and closes; ResetPeer resets; Cut closes every connection and the
// listener.
func TestProxyFaults(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	l := newLab(t)
	cl := addHost(t, ctx, l, "client", lab.HostOptions{})
	sv := addHost(t, ctx, l, "server", lab.HostOptions{})
	listen(t, ctx, sv, "9000", echo)

	roundTrip := func(c net.Conn, msg string, wait time.Duration) (string, error) {
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, len(msg))
		n, err := io.ReadFull(c, buf)
		return string(buf[:n]), err
	}
	dial := func(p *lab.Proxy) net.Conn {
		t.Helper()
		c, err := cl.Dial(ctx, "tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if got, err := roundTrip(c, "hello", 5*time.Second); err != nil || got != "hello" {
			t.Fatalf("echo through the healthy proxy: %q, %v", got, err)
		}
		return c
	}

	t.Run("partition holds, heal delivers", func(t *testing.T) {
		p, err := l.Proxy(ctx, cl, sv, 9000, lab.ProxyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := dial(p)
		if err := p.Partition(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := roundTrip(c, "held", 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("echo during the partition: %v, want a timeout", err)
		}
		if err := p.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
			t.Fatalf("after Heal: %q, %v; want the held echo", buf, err)
		}
	})
	t.Run("timeout drops and closes", func(t *testing.T) {
		p, err := l.Proxy(ctx, cl, sv, 9000, lab.ProxyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := dial(p)
		const after = 200 * time.Millisecond
		if err := p.Timeout(ctx, after); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = roundTrip(c, "lost", 5*time.Second)
		took := time.Since(start)
		if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("echo through a timeout: %v, want the connection closed", err)
		}
		if took < after-20*time.Millisecond || took > after+3*time.Second {
			t.Errorf("closed after %v, want about %v", took, after)
		}
	})
	t.Run("reset peer", func(t *testing.T) {
		p, err := l.Proxy(ctx, cl, sv, 9000, lab.ProxyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// A connection made after the toxic gets SO_LINGER 0, so its
		// close is a reset.
		if err := p.ResetPeer(ctx, 0); err != nil {
			t.Fatal(err)
		}
		c, err := cl.Dial(ctx, "tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = roundTrip(c, "reset", 3*time.Second)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("echo through reset_peer: %v, want ECONNRESET", err)
		}
	})
	t.Run("cut", func(t *testing.T) {
		p, err := l.Proxy(ctx, cl, sv, 9000, lab.ProxyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := dial(p)
		if err := l.CutLink(ctx, cl, sv); err != nil {
			t.Fatal(err)
		}
		if _, err := roundTrip(c, "gone", 2*time.Second); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Errorf("echo through a cut proxy: %v, want the connection closed", err)
		}
		if _, err := cl.Dial(ctx, "tcp", p.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial a cut proxy: %v, want ECONNREFUSED", err)
		}
		if err := p.Partition(ctx); !errors.Is(err, lab.ErrCut) {
			t.Errorf("Partition after Cut: %v, want ErrCut", err)
		}
	})
}

// Proxy options toxiproxy cannot express are refused, not rounded.
func TestProxyRefusesOptions(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	l := newLab(t)
	cl := addHost(t, ctx, l, "client", lab.HostOptions{})
	sv := addHost(t, ctx, l, "server", lab.HostOptions{})
	for _, tc := range []struct {
		name string
		port int
		opts lab.ProxyOptions
	}{
		{"sub-millisecond latency", 9000, lab.ProxyOptions{Latency: 1500 * time.Microsecond}},
		{"jitter over latency", 9000, lab.ProxyOptions{Latency: 5 * time.Millisecond, Jitter: 6 * time.Millisecond}},
		{"rate not in 1000 B/s", 9000, lab.ProxyOptions{Rate: 1500}},
		{"negative delay", 9000, lab.ProxyOptions{UpstreamDelay: -time.Millisecond}},
		{"port 0", 0, lab.ProxyOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := l.Proxy(ctx, cl, sv, tc.port, tc.opts); !errors.Is(err, lab.ErrInvalid) {
				t.Errorf("Proxy(%d, %+v): %v, want ErrInvalid", tc.port, tc.opts, err)
			}
		})
	}
	if _, err := l.Proxy(ctx, cl, cl, 9000, lab.ProxyOptions{}); !errors.Is(err, lab.ErrInvalid) {
		t.Errorf("proxy from a host to itself: %v, want ErrInvalid", err)
	}
}
