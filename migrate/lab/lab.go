package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// ServePort is the port every host's serve listens on; each host has its
// own network namespace, so they never collide.
const ServePort = 7100

// Address plan: lab slot S owns 10.199.S.0/24, cut into 64 /30s. Each
// host's management veth and each link between hosts takes one.
const (
	maxSlots   = 256
	maxSubnets = 64
	namePrefix = "mtlab-"
)

// Config configures a Lab.
type Config struct {
	// Binary is the migtrace executable Host.Serve runs.
	Binary string
	// Env is added to the environment of every process a host runs. The
	// rest of the environment is the test process's without OTEL_*
	// variables and proxy settings: nothing they point at is reachable
	// from inside a host.
	Env []string
	// Logf, if set, gets a line for every namespace, link, proxy and
	// process the lab makes or removes.
	Logf func(format string, args ...any)
}

// Lab is a set of hosts on this machine: network namespaces, joined to the
// root namespace by a management veth each and to each other by veth
// links or userspace proxies. Its methods are safe for concurrent use.
type Lab struct {
	cfg  Config
	slot int
	lock *os.File
	tox  *toxiproxy.ApiServer
	// client reaches the hosts' APIs from the root namespace.
	client *http.Client

	mu      sync.Mutex
	closed  bool
	hosts   []*Host
	links   []*Link
	proxies []*Proxy
	subnets int // /30s handed out
}

// Available reports whether this machine can run a lab; its error wraps
// ErrUnsupported with the reason.
func Available() error { return available() }

// TimeNamespaces reports whether hosts can have a MonotonicOffset; its
// error wraps ErrUnsupported with the reason.
func TimeNamespaces() error { return timeNamespaces() }

// New claims a free lab slot (one of 256, each a lock file under
// /run/mtlab that dies with its holder), removes what crashed labs left
// behind in every slot nobody holds, and returns an empty lab.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	if err := available(); err != nil {
		return nil, err
	}
	l := &Lab{cfg: cfg, slot: -1}
	if err := l.claimSlot(); err != nil {
		return nil, err
	}
	if err := l.sweep(ctx); err != nil {
		l.releaseSlot()
		return nil, err
	}
	// Traffic for a host that is gone must fail here rather than follow
	// the default route off this machine.
	if _, err := runTool(ctx, "ip", "route", "replace", "unreachable", l.slotPrefix().String()); err != nil {
		l.releaseSlot()
		return nil, fmt.Errorf("creating lab: %w", err)
	}
	l.tox = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	l.client = &http.Client{Transport: &http.Transport{
		Proxy:             nil, // a proxy from the environment could not reach a host
		DialContext:       l.guardedDial,
		DisableKeepAlives: true,
	}}
	l.logf("lab: slot %d, %s", l.slot, l.slotPrefix())
	return l, nil
}

// Slot is the lab's slot: its names start mtlab-SLOT- and its addresses
// lie in 10.199.SLOT.0/24.
func (l *Lab) Slot() int { return l.slot }

func (l *Lab) logf(format string, args ...any) {
	if l.cfg.Logf != nil {
		l.cfg.Logf(format, args...)
	}
}

func (l *Lab) slotPrefix() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 199, byte(l.slot), 0}), 24)
}

// subnetAddr is address i (1 or 2) of the lab's /30 number k.
func (l *Lab) subnetAddr(k, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 199, byte(l.slot), byte(4*k + i)})
}

// nextSubnet hands out a /30; the caller holds l.mu.
func (l *Lab) nextSubnet() (int, error) {
	if l.subnets >= maxSubnets {
		return 0, fmt.Errorf("%w: %d hosts and links", ErrFull, maxSubnets)
	}
	l.subnets++
	return l.subnets - 1, nil
}

func (l *Lab) nsPrefix() string { return namePrefix + strconv.Itoa(l.slot) + "-" }

// rootIfPrefix names the root-namespace ends of a slot's management veths.
func rootIfPrefix(slot int) string { return "mtl" + strconv.Itoa(slot) + "h" }

// open is checkOpen for callers not holding l.mu.
func (l *Lab) open() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checkOpen()
}

// checkOpen fails once the lab is closed; the caller holds l.mu.
func (l *Lab) checkOpen() error {
	if l.closed {
		return ErrClosed
	}
	return nil
}

func (l *Lab) claimSlot() error {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return fmt.Errorf("creating lab: %w", err)
	}
	for s := range maxSlots {
		f, err := os.OpenFile(slotLockPath(s), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return fmt.Errorf("creating lab: %w", err)
		}
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return fmt.Errorf("creating lab: locking %s: %w", f.Name(), err)
		}
		if ok {
			l.slot, l.lock = s, f
			return nil
		}
		f.Close()
	}
	return fmt.Errorf("%w: all %d lab slots are held", ErrFull, maxSlots)
}

func (l *Lab) releaseSlot() {
	if l.lock != nil {
		l.lock.Close() // closing drops the flock
		l.lock = nil
	}
}

func slotLockPath(s int) string { return filepath.Join(lockDir, "slot-"+strconv.Itoa(s)+".lock") }

var nsName = regexp.MustCompile(`^` + namePrefix + `(\d+)-`)
var rootIfName = regexp.MustCompile(`^mtl(\d+)h\d+$`)

// sweep removes namespaces, root-side veths and routes of every slot that
// no live lab holds: what a crashed run left. Its own slot counts as
// unheld.
func (l *Lab) sweep(ctx context.Context) error {
	out, err := runTool(ctx, "ip", "netns", "list")
	if err != nil {
		return fmt.Errorf("sweeping stale labs: %w", err)
	}
	stale := map[int][]string{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if m := nsName.FindStringSubmatch(f[0]); m != nil {
			s, _ := strconv.Atoi(m[1])
			stale[s] = append(stale[s], f[0])
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("sweeping stale labs: %w", err)
	}
	staleIfs := map[int][]string{}
	for _, ifc := range ifs {
		if m := rootIfName.FindStringSubmatch(ifc.Name); m != nil {
			s, _ := strconv.Atoi(m[1])
			staleIfs[s] = append(staleIfs[s], ifc.Name)
		}
	}
	routes, err := runTool(ctx, "ip", "route", "show", "type", "unreachable", "root", "10.199.0.0/16")
	if err != nil {
		return fmt.Errorf("sweeping stale labs: %w", err)
	}
	staleRoutes := map[int]string{}
	for line := range strings.Lines(routes) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "unreachable" {
			continue
		}
		p, err := netip.ParsePrefix(f[1])
		if err != nil || p.Bits() != 24 {
			continue
		}
		staleRoutes[int(p.Addr().As4()[2])] = f[1]
	}
	slots := map[int]bool{}
	for s := range stale {
		slots[s] = true
	}
	for s := range staleIfs {
		slots[s] = true
	}
	for s := range staleRoutes {
		slots[s] = true
	}
	var errs []error
	for s := range slots {
		if s != l.slot {
			release, ok, err := holdSlot(s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !ok {
				continue // a live lab's
			}
			defer release()
		}
		for _, ns := range stale[s] {
			l.logf("lab: removing stale namespace %s", ns)
			errs = append(errs, removeNamespace(ctx, ns))
		}
		for _, ifc := range staleIfs[s] {
			l.logf("lab: removing stale veth %s", ifc)
			errs = append(errs, deleteLink(ctx, "", ifc))
		}
		if r, ok := staleRoutes[s]; ok {
			_, err := runTool(ctx, "ip", "route", "del", "unreachable", r)
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweeping stale labs: %w", err)
	}
	return nil
}

// holdSlot locks slot s if nobody does; release unlocks it.
func holdSlot(s int) (release func(), ok bool, err error) {
	f, err := os.OpenFile(slotLockPath(s), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, err
	}
	ok, err = tryLock(f)
	if !ok || err != nil {
		f.Close()
		return nil, false, err
	}
	return func() { f.Close() }, true, nil
}

// removeNamespace kills whatever still runs in ns and deletes it.
func removeNamespace(ctx context.Context, ns string) error {
	pids, err := runTool(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(pids) {
		pid, err := strconv.Atoi(f)
		// This process shows up when its main thread ran a host's
		// goroutine: the runtime parks a locked main thread for good
		// instead of ending it, and ip looks at the main thread.
		if err != nil || pid == os.Getpid() {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL) // it may have exited meanwhile
	}
	_, err = runTool(ctx, "ip", "netns", "del", ns)
	return err
}

// deleteLink deletes a veth (and so its peer) in namespace ns ("" for the
// root namespace); one already gone is not an error.
func deleteLink(ctx context.Context, ns, ifname string) error {
	args := []string{"link", "del", "dev", ifname}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	_, err := runTool(ctx, "ip", args...)
	if err != nil && strings.Contains(err.Error(), "Cannot find device") {
		return nil
	}
	return err
}

// guardedDial lets the lab's API client reach only live hosts' management
// addresses, so no request can leave this machine.
func (l *Lab) guardedDial(ctx context.Context, network, address string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, fmt.Errorf("%w: dialling %s: want a host's IP:port", ErrInvalid, address)
	}
	l.mu.Lock()
	ok := !l.closed && slices.ContainsFunc(l.hosts, func(h *Host) bool { return h.Addr() == ap.Addr() })
	l.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a host of this lab", ErrInvalid, address)
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(ctx, network, address)
}

// Host returns the host named name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

// Hosts returns the lab's hosts in the order they were added.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.hosts)
}

// Close stops every proxy and process, deletes every veth and namespace,
// removes the slot's route and frees the slot. It tries every step and
// returns what failed; a closed lab's methods return ErrClosed.
func (l *Lab) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	hosts, links, proxies := l.hosts, l.links, l.proxies
	l.mu.Unlock()

	var errs []error
	for _, p := range proxies {
		p.stop()
	}
	for _, h := range hosts {
		errs = append(errs, h.stopAll(ctx))
	}
	for _, k := range links {
		errs = append(errs, k.remove(ctx))
	}
	for _, h := range hosts {
		errs = append(errs, h.remove(ctx))
	}
	if _, err := runTool(ctx, "ip", "route", "del", "unreachable", l.slotPrefix().String()); err != nil {
		errs = append(errs, err)
	}
	l.client.CloseIdleConnections()
	l.releaseSlot()
	l.logf("lab: slot %d closed", l.slot)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("closing lab: %w", err)
	}
	return nil
}

// Partition silently drops every packet between a and b, both ways, on
// every path between them: their veth link and any proxy. Their
// management paths to the test process are untouched.
func (l *Lab) Partition(ctx context.Context, a, b *Host) error {
	return l.eachPath(a, b, func(k *Link) error { return k.Partition(ctx) },
		func(p *Proxy) error { return p.Partition(ctx) })
}

// Heal undoes Partition (and Link.Drop and the proxies' faults) between
// a and b.
func (l *Lab) Heal(ctx context.Context, a, b *Host) error {
	return l.eachPath(a, b, func(k *Link) error { return k.Heal(ctx) },
		func(p *Proxy) error { return p.Heal(ctx) })
}

// CutLink removes every path between a and b for good: the veth link is
// deleted (connections over it stall, new ones fail: no route) and
// proxies stop (their connections close).
func (l *Lab) CutLink(ctx context.Context, a, b *Host) error {
	return l.eachPath(a, b, func(k *Link) error { return k.Cut(ctx) },
		func(p *Proxy) error { return p.Cut(ctx) })
}

func (l *Lab) eachPath(a, b *Host, link func(*Link) error, proxy func(*Proxy) error) error {
	l.mu.Lock()
	if err := l.checkOpen(); err != nil {
		l.mu.Unlock()
		return err
	}
	var ks []*Link
	for _, k := range l.links {
		if k.joins(a, b) {
			ks = append(ks, k)
		}
	}
	var ps []*Proxy
	for _, p := range l.proxies {
		if (p.client == a && p.server == b) || (p.client == b && p.server == a) {
			ps = append(ps, p)
		}
	}
	l.mu.Unlock()
	if len(ks)+len(ps) == 0 {
		return fmt.Errorf("%w: no link or proxy between %s and %s", ErrNotFound, a.Name(), b.Name())
	}
	// A path cut for good carries nothing: with a live one besides (a
	// link made after the cut), only the live ones are acted on.
	liveKs := slices.DeleteFunc(slices.Clone(ks), (*Link).isCut)
	livePs := slices.DeleteFunc(slices.Clone(ps), (*Proxy).isCut)
	if len(liveKs)+len(livePs) > 0 {
		ks, ps = liveKs, livePs
	}
	var errs []error
	for _, k := range ks {
		errs = append(errs, link(k))
	}
	for _, p := range ps {
		errs = append(errs, proxy(p))
	}
	return errors.Join(errs...)
}

// env is the environment of a host's processes.
func (l *Lab) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OTEL_") || strings.EqualFold(k, "http_proxy") ||
			strings.EqualFold(k, "https_proxy") || strings.EqualFold(k, "no_proxy") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, l.cfg.Env...)
}
