package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// LinkOptions shape a veth link.
type LinkOptions struct {
	// Rate caps each direction at this many bytes per second, counting
	// Ethernet, IP and TCP headers, with a tbf qdisc on each end; 0 leaves
	// the link unshaped.
	Rate int64
	// Burst is tbf's bucket in bytes; 0 picks 10 ms at Rate, at least
	// 16 KiB (a bucket smaller than a frame would pass nothing).
	Burst int64
	// QueueLatency bounds how long a packet may wait in tbf's queue before
	// it is dropped; 0 picks 50 ms.
	QueueLatency time.Duration
}

// Link is a veth pair between two hosts, with an address in a /30 of the
// lab's at each end.
type Link struct {
	lab    *Lab
	a, b   *Host
	subnet int
	ifname string // the same at both ends, each in its own namespace
	opts   LinkOptions

	mu       sync.Mutex
	cut      bool
	dropping [2]bool // a's egress, b's egress
}

// Link joins a and b with a veth pair, interface lkN in both namespaces.
// Two hosts have one link at a time; once it is cut, Link makes a new one,
// with addresses of its own.
func (l *Lab) Link(ctx context.Context, a, b *Host, opts LinkOptions) (*Link, error) {
	if a == nil || b == nil || a.lab != l || b.lab != l || a == b {
		return nil, fmt.Errorf("linking: %w: want two different hosts of this lab", ErrInvalid)
	}
	if opts.Rate < 0 || opts.Burst < 0 || opts.QueueLatency < 0 {
		return nil, fmt.Errorf("linking %s and %s: %w: negative option %+v", a.name, b.name, ErrInvalid, opts)
	}
	if opts.Rate > 0 {
		if opts.Burst == 0 {
			opts.Burst = max(opts.Rate/100, 16<<10)
		}
		if opts.QueueLatency == 0 {
			opts.QueueLatency = 50 * time.Millisecond
		}
	}
	l.mu.Lock()
	if err := l.checkOpen(); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	for _, k := range l.links {
		// A cut link can be replaced, as a repaired one would be.
		if k.joins(a, b) && !k.isCut() {
			l.mu.Unlock()
			return nil, fmt.Errorf("linking %s and %s: %w", a.name, b.name, ErrExists)
		}
	}
	n, err := l.nextSubnet()
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("linking %s and %s: %w", a.name, b.name, err)
	}
	k := &Link{lab: l, a: a, b: b, subnet: n, ifname: "lk" + strconv.Itoa(n), opts: opts}
	l.links = append(l.links, k)
	l.mu.Unlock()

	steps := [][]string{
		{"link", "add", k.ifname, "netns", a.ns, "type", "veth", "peer", "name", k.ifname, "netns", b.ns},
		{"-n", a.ns, "addr", "add", k.Addr(a).String() + "/30", "dev", k.ifname},
		{"-n", b.ns, "addr", "add", k.Addr(b).String() + "/30", "dev", k.ifname},
		{"-n", a.ns, "link", "set", k.ifname, "up"},
		{"-n", b.ns, "link", "set", k.ifname, "up"},
	}
	for _, args := range steps {
		if _, err := runTool(ctx, "ip", args...); err != nil {
			return nil, fmt.Errorf("linking %s and %s: %w", a.name, b.name, err)
		}
	}
	if opts.Rate > 0 {
		for _, h := range []*Host{a, b} {
			if err := k.setQdisc(ctx, h, false); err != nil {
				return nil, fmt.Errorf("linking %s and %s: %w", a.name, b.name, err)
			}
		}
	}
	l.logf("lab: link %s %s <-> %s %s (%s), rate %d B/s", a.name, k.Addr(a), b.name, k.Addr(b), k.ifname, opts.Rate)
	return k, nil
}

func (k *Link) joins(a, b *Host) bool {
	return (k.a == a && k.b == b) || (k.a == b && k.b == a)
}

func (k *Link) isCut() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cut
}

// Hosts returns the link's two ends in the order Link was given them.
func (k *Link) Hosts() (a, b *Host) { return k.a, k.b }

// Interface is the name of the link's interface in both hosts.
func (k *Link) Interface() string { return k.ifname }

// Addr is h's address on the link; the zero Addr if h is not on it.
func (k *Link) Addr(h *Host) netip.Addr {
	switch h {
	case k.a:
		return k.lab.subnetAddr(k.subnet, 1)
	case k.b:
		return k.lab.subnetAddr(k.subnet, 2)
	}
	return netip.Addr{}
}

// ServeAddr is where the other end reaches h's serve over the link.
func (k *Link) ServeAddr(h *Host) string {
	return netip.AddrPortFrom(k.Addr(h), ServePort).String()
}

func (k *Link) end(h *Host) (int, error) {
	switch h {
	case k.a:
		return 0, nil
	case k.b:
		return 1, nil
	}
	name := "<nil>"
	if h != nil {
		name = h.name
	}
	return 0, fmt.Errorf("%w: host %s is not on link %s", ErrInvalid, name, k.ifname)
}

// setQdisc puts h's end in a state: a blackhole while dropping, else tbf
// at Rate, else the veth's default (no queue).
func (k *Link) setQdisc(ctx context.Context, h *Host, drop bool) error {
	base := []string{"-n", h.ns, "qdisc"}
	switch {
	case drop:
		// blackhole drops every packet and tells the sender it was sent:
		// a silent loss, as a partition is.
		_, err := runTool(ctx, "tc", append(base, "replace", "dev", k.ifname, "root", "blackhole")...)
		return err
	case k.opts.Rate > 0:
		_, err := runTool(ctx, "tc", append(base, "replace", "dev", k.ifname, "root", "tbf",
			"rate", strconv.FormatInt(k.opts.Rate*8, 10)+"bit",
			"burst", strconv.FormatInt(k.opts.Burst, 10),
			"latency", strconv.FormatInt(k.opts.QueueLatency.Microseconds(), 10)+"us")...)
		return err
	default:
		// Only after a blackhole (setDrop tracks that): back to no queue.
		_, err := runTool(ctx, "tc", append(base, "del", "dev", k.ifname, "root")...)
		return err
	}
}

// Drop silently drops every packet from's end sends on the link (one
// direction of a partition); Heal undoes it.
func (k *Link) Drop(ctx context.Context, from *Host) error {
	i, err := k.end(from)
	if err != nil {
		return err
	}
	return k.setDrop(ctx, i, true)
}

// Partition drops every packet on the link, both ways, silently: TCP
// connections stall and retransmit, as across a real partition. Heal
// undoes it.
func (k *Link) Partition(ctx context.Context) error {
	return errors.Join(k.setDrop(ctx, 0, true), k.setDrop(ctx, 1, true))
}

// Heal restores both directions to their shaping (tbf at Rate, or none).
func (k *Link) Heal(ctx context.Context) error {
	return errors.Join(k.setDrop(ctx, 0, false), k.setDrop(ctx, 1, false))
}

func (k *Link) setDrop(ctx context.Context, end int, drop bool) error {
	if err := k.lab.open(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cut {
		return fmt.Errorf("link %s: %w", k.ifname, ErrCut)
	}
	if k.dropping[end] == drop {
		return nil
	}
	h := []*Host{k.a, k.b}[end]
	if err := k.setQdisc(ctx, h, drop); err != nil {
		return fmt.Errorf("link %s: %w", k.ifname, err)
	}
	k.dropping[end] = drop
	k.lab.logf("lab: link %s: %s's egress dropping=%v", k.ifname, h.name, drop)
	return nil
}

// Cut deletes the veth pair: its addresses and routes go with it, so
// connections over it stall and new ones fail with "network unreachable".
// A cut link stays cut.
func (k *Link) Cut(ctx context.Context) error {
	if err := k.lab.open(); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cut {
		return nil
	}
	if err := deleteLink(ctx, k.a.ns, k.ifname); err != nil {
		return fmt.Errorf("cutting link %s: %w", k.ifname, err)
	}
	k.cut = true
	k.lab.logf("lab: link %s cut", k.ifname)
	return nil
}

// LinkStats are the kernel's counters for one end of a link.
type LinkStats struct {
	RxBytes, TxBytes     uint64
	RxPackets, TxPackets uint64
	// TxDropped counts what the end's qdisc dropped (tbf overflow; a
	// blackhole counts nothing).
	TxDropped uint64
}

// Stats reads h's end's interface counters.
func (k *Link) Stats(ctx context.Context, h *Host) (LinkStats, error) {
	if _, err := k.end(h); err != nil {
		return LinkStats{}, err
	}
	out, err := runTool(ctx, "ip", "-n", h.ns, "-s", "-j", "link", "show", "dev", k.ifname)
	if err != nil {
		return LinkStats{}, fmt.Errorf("link %s: %w", k.ifname, err)
	}
	var links []struct {
		Stats struct {
			Rx struct{ Bytes, Packets uint64 }          `json:"rx"`
			Tx struct{ Bytes, Packets, Dropped uint64 } `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		return LinkStats{}, fmt.Errorf("link %s: reading ip's counters %q: %v", k.ifname, out, err)
	}
	s := links[0].Stats
	return LinkStats{RxBytes: s.Rx.Bytes, TxBytes: s.Tx.Bytes, RxPackets: s.Rx.Packets, TxPackets: s.Tx.Packets, TxDropped: s.Tx.Dropped}, nil
}

// remove deletes the veth if it is still there (Close).
func (k *Link) remove(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.cut {
		return nil
	}
	k.cut = true
	return deleteLink(ctx, k.a.ns, k.ifname)
}
