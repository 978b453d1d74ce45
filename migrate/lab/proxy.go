package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
)

// ProxyOptions shape a proxied path. toxiproxy works in whole
// milliseconds and in 1000 bytes per second.
type ProxyOptions struct {
	// Latency is added to each direction.
	Latency time.Duration
	// Jitter varies Latency by up to ± this, drawn per chunk of data.
	Jitter time.Duration
	// UpstreamDelay and DownstreamDelay are added to one direction only:
	// client to server, and server to client.
	UpstreamDelay, DownstreamDelay time.Duration
	// Rate caps each direction at this many bytes of payload per second;
	// 0 leaves it unlimited.
	Rate int64
}

// Proxy is a userspace TCP path from a client host to one port of a
// server host, through toxiproxy running in the test process. It listens
// on the root namespace's end of the client's management veth and dials
// the server's management address, so its traffic crosses three
// namespaces and only touches addresses the lab made.
type Proxy struct {
	lab            *Lab
	client, server *Host
	port           int
	p              *toxiproxy.Proxy
	addr           string

	mu     sync.Mutex
	cut    bool
	faults []string // toxic names Heal removes
}

// Proxy starts a proxy through which client reaches server's port (for
// serve, ServePort) at Proxy.Addr.
func (l *Lab) Proxy(ctx context.Context, client, server *Host, port int, opts ProxyOptions) (*Proxy, error) {
	if client == nil || server == nil || client.lab != l || server.lab != l || client == server {
		return nil, fmt.Errorf("proxying: %w: want two different hosts of this lab", ErrInvalid)
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("proxying: %w: port %d", ErrInvalid, port)
	}
	ms := map[string]time.Duration{"latency": opts.Latency, "jitter": opts.Jitter,
		"upstream delay": opts.UpstreamDelay, "downstream delay": opts.DownstreamDelay}
	for name, d := range ms {
		if d < 0 || d%time.Millisecond != 0 {
			return nil, fmt.Errorf("proxying: %w: %s %v: want whole non-negative milliseconds", ErrInvalid, name, d)
		}
	}
	if opts.Jitter > opts.Latency {
		return nil, fmt.Errorf("proxying: %w: jitter %v exceeds latency %v", ErrInvalid, opts.Jitter, opts.Latency)
	}
	if opts.Rate < 0 || opts.Rate%1000 != 0 {
		return nil, fmt.Errorf("proxying: %w: rate %d B/s: want a non-negative multiple of 1000", ErrInvalid, opts.Rate)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("proxying: %w", err)
	}
	l.mu.Lock()
	if err := l.checkOpen(); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	name := fmt.Sprintf("%s-%s-%d-%d", client.name, server.name, port, len(l.proxies))
	listen := netip.AddrPortFrom(client.rootAddr(), 0).String()
	upstream := netip.AddrPortFrom(server.Addr(), uint16(port)).String()
	tp := toxiproxy.NewProxy(l.tox, name, listen, upstream)
	if err := tp.Start(); err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("proxying %s to %s:%d: %w", client.name, server.name, port, err)
	}
	// Start has bound the listener and recorded its port.
	p := &Proxy{lab: l, client: client, server: server, port: port, p: tp, addr: tp.Listen}
	l.proxies = append(l.proxies, p)
	l.mu.Unlock()

	type toxic struct {
		name, typ, stream string
		attrs             map[string]int64
	}
	var toxics []toxic
	for _, stream := range []string{"upstream", "downstream"} {
		if opts.Latency > 0 {
			toxics = append(toxics, toxic{"latency_" + stream, "latency", stream,
				map[string]int64{"latency": opts.Latency.Milliseconds(), "jitter": opts.Jitter.Milliseconds()}})
		}
		if opts.Rate > 0 {
			toxics = append(toxics, toxic{"bandwidth_" + stream, "bandwidth", stream, map[string]int64{"rate": opts.Rate / 1000}})
		}
	}
	if opts.UpstreamDelay > 0 {
		toxics = append(toxics, toxic{"delay_upstream", "latency", "upstream", map[string]int64{"latency": opts.UpstreamDelay.Milliseconds()}})
	}
	if opts.DownstreamDelay > 0 {
		toxics = append(toxics, toxic{"delay_downstream", "latency", "downstream", map[string]int64{"latency": opts.DownstreamDelay.Milliseconds()}})
	}
	for _, t := range toxics {
		if err := p.addToxic(t.name, t.typ, t.stream, t.attrs); err != nil {
			return nil, err
		}
	}
	l.logf("lab: proxy %s: %s reaches %s at %s, %+v", name, client.name, upstream, p.Addr(), opts)
	return p, nil
}

// Addr is where the client host reaches the server's port through the
// proxy.
func (p *Proxy) Addr() string { return p.addr }

// Hosts returns the proxy's client and server.
func (p *Proxy) Hosts() (client, server *Host) { return p.client, p.server }

func (p *Proxy) addToxic(name, typ, stream string, attrs map[string]int64) error {
	body, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1.0, "attributes": attrs})
	if err != nil {
		return err
	}
	if _, err := p.p.Toxics.AddToxicJson(strings.NewReader(string(body))); err != nil {
		return fmt.Errorf("proxy %s: adding %s toxic %s: %w", p.p.Name, typ, name, err)
	}
	return nil
}

// fault adds a toxic in both directions that Heal removes.
func (p *Proxy) fault(ctx context.Context, typ string, attrs map[string]int64) error {
	if err := p.lab.open(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return fmt.Errorf("proxy %s: %w", p.p.Name, ErrCut)
	}
	for _, stream := range []string{"upstream", "downstream"} {
		name := fmt.Sprintf("fault%d_%s_%s", len(p.faults), typ, stream)
		if err := p.addToxic(name, typ, stream, attrs); err != nil {
			return err
		}
		p.faults = append(p.faults, name)
	}
	p.lab.logf("lab: proxy %s: %s %v", p.p.Name, typ, attrs)
	return nil
}

// partitionHold is how long a partition holds data: longer than any test.
const partitionHold = 24 * time.Hour

// Partition stops data both ways without closing connections; data sent
// meanwhile is held, not lost, and flows on Heal, as TCP would deliver it
// once a real partition heals.
func (p *Proxy) Partition(ctx context.Context) error {
	return p.fault(ctx, "latency", map[string]int64{"latency": partitionHold.Milliseconds()})
}

// Timeout stops data both ways, discarding it, and closes connections
// after d (never, for 0): toxiproxy's timeout toxic. New connections are
// accepted and stall too.
func (p *Proxy) Timeout(ctx context.Context, d time.Duration) error {
	return p.fault(ctx, "timeout", map[string]int64{"timeout": d.Milliseconds()})
}

// ResetPeer resets each connection (TCP RST) d after it next carries data:
// toxiproxy's reset_peer toxic.
func (p *Proxy) ResetPeer(ctx context.Context, d time.Duration) error {
	return p.fault(ctx, "reset_peer", map[string]int64{"timeout": d.Milliseconds()})
}

// Heal removes Partition, Timeout and ResetPeer, keeping the proxy's
// ProxyOptions.
func (p *Proxy) Heal(ctx context.Context) error {
	if err := p.lab.open(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return fmt.Errorf("proxy %s: %w", p.p.Name, ErrCut)
	}
	var errs []error
	for _, name := range p.faults {
		if err := p.p.Toxics.RemoveToxic(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("proxy %s: removing %s: %w", p.p.Name, name, err))
		}
	}
	p.faults = nil
	p.lab.logf("lab: proxy %s healed", p.p.Name)
	return errors.Join(errs...)
}

// Cut stops the proxy: its listener and every connection through it
// close. A cut proxy stays cut.
func (p *Proxy) Cut(ctx context.Context) error {
	if err := p.lab.open(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.stop()
	p.lab.logf("lab: proxy %s cut", p.p.Name)
	return nil
}

func (p *Proxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

func (p *Proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cut {
		p.cut = true
		p.p.Stop()
	}
}
