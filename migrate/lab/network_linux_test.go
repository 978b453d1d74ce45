package lab_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/migtrace/migtrace/migrate/lab"
	"github.com/migtrace/migtrace/migrate/server"
)

// ping sends one ICMP echo from h to dst and returns the round trip.
func ping(ctx context.Context, h *lab.Host, dst net.IP, seq int) (time.Duration, error) {
	var c *icmp.PacketConn
	err := h.Do(func() (err error) {
		c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	id := os.Getpid() & 0xffff
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("mtlab")}}
	b, err := msg.Marshal(nil)
	if err != nil {
		return 0, err
	}
	deadline, ok := ctx.Deadline()
	if !ok || time.Until(deadline) > 2*time.Second {
		deadline = time.Now().Add(2 * time.Second)
	}
	_ = c.SetDeadline(deadline)
	start := time.Now()
	if _, err := c.WriteTo(b, &net.IPAddr{IP: dst}); err != nil {
		return 0, err
	}
	buf := make([]byte, 1500)
	for {
		n, peer, err := c.ReadFrom(buf)
		if err != nil {
			return 0, err
		}
		m, err := icmp.ParseMessage(1, buf[:n])
		if err != nil {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && m.Type == ipv4.ICMPTypeEchoReply && e.ID == id && e.Seq == seq &&
			peer.(*net.IPAddr).IP.Equal(dst) {
			return time.Since(start), nil
		}
	}
}

// Two hosts on a veth link ping each other and talk HTTP to a real serve
// across it; neither reaches the other's management address, and the test
// process reaches both APIs.
func TestLinkCarriesPingAndHTTP(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	l := newLab(t)
	a := addHost(t, ctx, l, "a", lab.HostOptions{})
	b := addHost(t, ctx, l, "b", lab.HostOptions{})
	k, err := l.Link(ctx, a, b, lab.LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct{ from, to *lab.Host }{{a, b}, {b, a}} {
		rtt, err := ping(ctx, tc.from, net.IP(k.Addr(tc.to).AsSlice()), i+1)
		if err != nil {
			t.Fatalf("ping %s -> %s (%s): %v", tc.from.Name(), tc.to.Name(), k.Addr(tc.to), err)
		}
		t.Logf("ping %s -> %s: %v", tc.from.Name(), k.Addr(tc.to), rtt)
	}

	if err := a.Serve(ctx, "--memory", "4MiB"); err != nil {
		t.Fatal(err)
	}
	resp, err := b.HTTPClient().Get("http://" + k.ServeAddr(a) + "/v1/instance")
	if err != nil {
		t.Fatalf("GET from b over the link: %v", err)
	}
	defer resp.Body.Close()
	var st server.InstanceStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET from b: %s, %v", resp.Status, err)
	}
	if st.Name != "a" || st.State != server.StateWaiting {
		t.Errorf("b sees instance %q in state %s, want a, waiting", st.Name, st.State)
	}
	if st, err := a.Status(ctx); err != nil || st.Name != "a" {
		t.Errorf("test process to a's API at %s: %+v, %v", a.APIAddr(), st, err)
	}

	// Hosts are joined only by what the test added.
	_, err = b.Dial(ctx, "tcp", a.APIAddr())
	if !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("b dialling a's management address %s: %v, want ENETUNREACH", a.APIAddr(), err)
	}
}

// tbf on a link caps throughput at its rate (goodput is a little below:
// tbf counts headers); an unshaped link is far faster.
func TestLinkRateLimits(t *testing.T) {
	tests := []struct {
		name  string
		rate  int64
		bytes int64
	}{
		{"unshaped", 0, 64 << 20},
		{"2 MB/s", 2_000_000, 3_000_000},
		{"8 MB/s", 8_000_000, 12_000_000},
	}
	ctx := testCtx(t, 60*time.Second)
	l := newLab(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := addHost(t, ctx, l, "snd"+string(rune('a'+i)), lab.HostOptions{})
			b := addHost(t, ctx, l, "rcv"+string(rune('a'+i)), lab.HostOptions{})
			k, err := l.Link(ctx, a, b, lab.LinkOptions{Rate: tc.rate})
			if err != nil {
				t.Fatal(err)
			}
			got := make(chan []arrival, 1)
			listen(t, ctx, b, "9000", func(c net.Conn) {
				arr, _ := receiveAll(c)
				got <- arr
			})
			lo, hi := 0.85*float64(tc.rate), 1.02*float64(tc.rate)
			if tc.rate == 0 {
				lo, hi = 50e6, math.Inf(1)
			}
			for attempt := 1; ; attempt++ {
				before, err := k.Stats(ctx, a)
				if err != nil {
					t.Fatal(err)
				}
				rate := measureRate(t, ctx, a, net.JoinHostPort(k.Addr(b).String(), "9000"), tc.bytes, got)
				after, err := k.Stats(ctx, a)
				if err != nil {
					t.Fatal(err)
				}
				sent := after.TxBytes - before.TxBytes
				t.Logf("attempt %d: rate set %d B/s, measured %.0f B/s; %s sent %d bytes in %d packets on %s",
					attempt, tc.rate, rate, a.Name(), sent, after.TxPackets-before.TxPackets, k.Interface())
				if sent < uint64(tc.bytes) {
					t.Errorf("%s's end counted %d bytes sent, want at least the %d payload bytes", a.Name(), sent, tc.bytes)
				}
				// Nothing makes tbf pass more than its rate.
				if rate > hi {
					t.Fatalf("measured %.0f B/s, over the %.0f allowed for %d B/s set", rate, hi, tc.rate)
				}
				if rate >= lo {
					return
				}
				// A starved sender or receiver leaves the bucket idle.
				if attempt == busyAttempts {
					t.Fatalf("measured at most %.0f B/s in %d attempts, want at least %.0f", rate, attempt, lo)
				}
			}
		})
	}
}

// Partition drops both ways silently and Heal lets the stalled data
// through (TCP retransmits it); Drop is one way; Cut leaves no route.
func TestLinkPartitionDropCut(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	l := newLab(t)
	a := addHost(t, ctx, l, "a", lab.HostOptions{})
	b := addHost(t, ctx, l, "b", lab.HostOptions{})
	k, err := l.Link(ctx, a, b, lab.LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	listen(t, ctx, b, "9000", echo)
	c, err := a.Dial(ctx, "tcp", net.JoinHostPort(k.Addr(b).String(), "9000"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip := func(msg string, wait time.Duration) error {
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, len(msg))
		_, err := io.ReadFull(c, buf)
		if err == nil && string(buf) != msg {
			return errors.New("echo garbled: " + string(buf))
		}
		return err
	}
	if err := roundTrip("before", 5*time.Second); err != nil {
		t.Fatalf("echo before the partition: %v", err)
	}
	if err := l.Partition(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	if err := roundTrip("during", 500*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("echo across the partition: %v, want a timeout", err)
	}
	healed := time.Now()
	if err := l.Heal(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	// The echo of "during" arrives once TCP retransmits it.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len("during"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "during" {
		t.Fatalf("after Heal: read %q, %v; want the held echo", buf, err)
	}
	t.Logf("held echo arrived %v after Heal", time.Since(healed).Round(time.Millisecond))

	// One way: UDP from a to b is lost, b to a arrives.
	pa, err := a.ListenPacket(ctx, "udp", net.JoinHostPort(k.Addr(a).String(), "9001"))
	if err != nil {
		t.Fatal(err)
	}
	defer pa.Close()
	pb, err := b.ListenPacket(ctx, "udp", net.JoinHostPort(k.Addr(b).String(), "9001"))
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	if err := k.Drop(ctx, a); err != nil {
		t.Fatal(err)
	}
	// A lost datagram is waited for 300 ms; a delivered one may take as
	// long as a busy machine needs.
	udp := func(from, to net.PacketConn, wait time.Duration) error {
		if _, err := from.WriteTo([]byte("x"), to.LocalAddr()); err != nil {
			return err
		}
		_ = to.SetReadDeadline(time.Now().Add(wait))
		_, _, err := to.ReadFrom(make([]byte, 16))
		return err
	}
	if err := udp(pb, pa, 5*time.Second); err != nil {
		t.Errorf("b -> a while a's egress drops: %v, want delivered", err)
	}
	if err := udp(pa, pb, 300*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a -> b while a's egress drops: %v, want lost", err)
	}
	if err := k.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := udp(pa, pb, 5*time.Second); err != nil {
		t.Errorf("a -> b after Heal: %v, want delivered", err)
	}

	if err := l.CutLink(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Dial(ctx, "tcp", net.JoinHostPort(k.Addr(b).String(), "9000")); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("dial after Cut: %v, want ENETUNREACH", err)
	}
	if err := k.Partition(ctx); !errors.Is(err, lab.ErrCut) {
		t.Errorf("Partition after Cut: %v, want ErrCut", err)
	}

	// A cut link is replaced by a new one, on addresses of its own, and
	// the lab's Partition acts on the new one alone.
	k2, err := l.Link(ctx, a, b, lab.LinkOptions{})
	if err != nil {
		t.Fatalf("linking again after Cut: %v", err)
	}
	if k2.Addr(b) == k.Addr(b) {
		t.Errorf("the new link reuses the cut one's address %v", k.Addr(b))
	}
	c2, err := a.Dial(ctx, "tcp", net.JoinHostPort(k2.Addr(b).String(), "9000"))
	if err != nil {
		t.Fatalf("dial over the new link: %v", err)
	}
	defer c2.Close()
	c = c2
	if err := roundTrip("relinked", 5*time.Second); err != nil {
		t.Errorf("echo over the new link: %v", err)
	}
	if err := l.Partition(ctx, a, b); err != nil {
		t.Errorf("Partition with a cut link and a live one: %v", err)
	}
	if err := roundTrip("cut again", 500*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("echo across the new link's partition: %v, want a timeout", err)
	}
}
