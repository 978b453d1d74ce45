package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
)

// HostOptions shape a host.
type HostOptions struct {
	// MonotonicOffset, when non-zero, makes CLOCK_MONOTONIC and
	// CLOCK_BOOTTIME read this much ahead (negative: behind) in every
	// process the host runs, through a time namespace; the kernel refuses
	// an offset that would take a clock below zero. Time namespaces cannot
	// shift CLOCK_REALTIME: for that use serve's --sim-wallclock-offset.
	MonotonicOffset time.Duration
}

// Host is a network namespace with a management veth to the root
// namespace, where the test process reaches it at Addr. Every process it
// runs is in that namespace and, with a MonotonicOffset, in a time
// namespace of that offset (one per process, all with the same offsets:
// the kernel lets a process join a time namespace only when it is single
// threaded, which a Go program never is).
type Host struct {
	lab    *Lab
	name   string
	ns     string
	subnet int
	rootIf string
	offset *time.Duration
	nsFile *os.File

	mu    sync.Mutex
	serve *process
	procs []*process // every process started, for Close
}

var hostName = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// AddHost creates a host: a network namespace named mtlab-SLOT-NAME whose
// interface mgmt0 has Addr, joined by a veth to the root namespace. name
// is 1 to 12 lower-case letters and digits, starting with a letter.
func (l *Lab) AddHost(ctx context.Context, name string, opts HostOptions) (*Host, error) {
	if !hostName.MatchString(name) {
		return nil, fmt.Errorf("adding host %q: %w: want 1-12 lower-case letters and digits, starting with a letter", name, ErrInvalid)
	}
	if opts.MonotonicOffset != 0 {
		if err := timeNamespaces(); err != nil {
			return nil, fmt.Errorf("adding host %s: %w", name, err)
		}
	}
	l.mu.Lock()
	if err := l.checkOpen(); err != nil {
		l.mu.Unlock()
		return nil, err
	}
	if slices.ContainsFunc(l.hosts, func(h *Host) bool { return h.name == name }) {
		l.mu.Unlock()
		return nil, fmt.Errorf("adding host %s: %w", name, ErrExists)
	}
	k, err := l.nextSubnet()
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("adding host %s: %w", name, err)
	}
	h := &Host{lab: l, name: name, ns: l.nsPrefix() + name, subnet: k,
		rootIf: rootIfPrefix(l.slot) + fmt.Sprint(k)}
	if opts.MonotonicOffset != 0 {
		off := opts.MonotonicOffset
		h.offset = &off
	}
	// Registered before it exists so Close removes whatever part of it
	// got made.
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()

	if err := h.create(ctx); err != nil {
		return nil, fmt.Errorf("adding host %s: %w", name, err)
	}
	l.logf("lab: host %s: namespace %s, %s on mgmt0, monotonic offset %v", name, h.ns, h.Addr(), opts.MonotonicOffset)
	return h, nil
}

func (h *Host) create(ctx context.Context) error {
	steps := [][]string{
		{"netns", "add", h.ns},
		{"-n", h.ns, "link", "set", "lo", "up"},
		{"link", "add", h.rootIf, "type", "veth", "peer", "name", "mgmt0", "netns", h.ns},
		{"addr", "add", h.lab.subnetAddr(h.subnet, 1).String() + "/30", "dev", h.rootIf},
		{"link", "set", h.rootIf, "up"},
		{"-n", h.ns, "addr", "add", h.Addr().String() + "/30", "dev", "mgmt0"},
		{"-n", h.ns, "link", "set", "mgmt0", "up"},
	}
	for _, args := range steps {
		if _, err := runTool(ctx, "ip", args...); err != nil {
			return err
		}
	}
	f, err := os.Open("/run/netns/" + h.ns)
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", h.ns, err)
	}
	h.mu.Lock()
	h.nsFile = f
	h.mu.Unlock()
	return nil
}

// Name is the host's name.
func (h *Host) Name() string { return h.name }

// Namespace is the name of the host's network namespace (ip netns).
func (h *Host) Namespace() string { return h.ns }

// MonotonicOffset is the host's CLOCK_MONOTONIC offset, 0 for none.
func (h *Host) MonotonicOffset() time.Duration {
	if h.offset == nil {
		return 0
	}
	return *h.offset
}

// Addr is the host's management address, which the test process reaches
// over the host's management veth.
func (h *Host) Addr() netip.Addr { return h.lab.subnetAddr(h.subnet, 2) }

// rootAddr is the root namespace's end of the management veth.
func (h *Host) rootAddr() netip.Addr { return h.lab.subnetAddr(h.subnet, 1) }

// APIAddr is where the test process reaches the host's serve.
func (h *Host) APIAddr() string { return netip.AddrPortFrom(h.Addr(), ServePort).String() }

func (h *Host) ready() (*os.File, error) {
	if err := h.lab.open(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nsFile == nil {
		return nil, fmt.Errorf("host %s: %w: its namespace was not made", h.name, ErrInvalid)
	}
	return h.nsFile, nil
}

// Do runs fn on an OS thread inside the host's network namespace: sockets
// fn opens belong to the host and keep doing so when used elsewhere. fn
// must not start processes (use Run or Serve).
func (h *Host) Do(fn func() error) error {
	ns, err := h.ready()
	if err != nil {
		return err
	}
	var fnErr error
	if err := nsThread(ns, nil, func() { fnErr = fn() }); err != nil {
		return fmt.Errorf("host %s: %w", h.name, err)
	}
	return fnErr
}

// Listen opens a listener inside the host, as net.ListenConfig.Listen.
func (h *Host) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() (err error) {
		ln, err = new(net.ListenConfig).Listen(ctx, network, address)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket inside the host, as
// net.ListenConfig.ListenPacket.
func (h *Host) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.Do(func() (err error) {
		pc, err = new(net.ListenConfig).ListenPacket(ctx, network, address)
		return err
	})
	return pc, err
}

// Dial connects from inside the host, as net.Dialer.DialContext.
func (h *Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		c, err = new(net.Dialer).DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// HTTPClient returns a client whose requests leave from inside the host.
func (h *Host) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		DialContext:       h.Dial,
		DisableKeepAlives: true,
	}}
}

// process is a command a host runs, reaped by the thread that started it.
type process struct {
	cmd  *exec.Cmd
	logs *logBuffer
	done chan struct{}
	err  error // cmd.Wait's, set before done closes
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// start runs name inside the host's namespaces until it exits.
func (h *Host) start(name string, args []string, out io.Writer) (*process, error) {
	ns, err := h.ready()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = h.lab.env()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = childAttr()
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		defer close(p.done)
		// The starting thread waits too: the child's parent-death signal
		// is tied to it.
		err := nsThread(ns, h.offset, func() {
			if err := cmd.Start(); err != nil {
				started <- err
				return
			}
			started <- nil
			p.err = cmd.Wait()
		})
		if err != nil {
			started <- err
		}
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("host %s: starting %s: %w", h.name, name, err)
	}
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	return p, nil
}

// Run runs a command inside the host (its network and time namespaces)
// and returns its standard output; a failure carries its standard error.
func (h *Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ns, err := h.ready()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = h.lab.env()
	cmd.SysProcAttr = childAttr()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var runErr error
	if err := nsThread(ns, h.offset, func() { runErr = cmd.Run() }); err != nil {
		return nil, fmt.Errorf("host %s: running %s: %w", h.name, name, err)
	}
	if runErr != nil {
		return stdout.Bytes(), fmt.Errorf("host %s: running %s: %w: %s", h.name, name, runErr, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Serve starts the lab's binary as `serve --listen 0.0.0.0:7100 --insecure
// --name NAME ARGS...` inside the host and returns once its API answers
// (or with ErrExited and its log if it exits first). --insecure because
// the listen address is not loopback; the namespaces are private. args
// must not repeat --listen.
func (h *Host) Serve(ctx context.Context, args ...string) error {
	if h.lab.cfg.Binary == "" {
		return fmt.Errorf("host %s: serve: %w: Config.Binary is empty", h.name, ErrInvalid)
	}
	h.mu.Lock()
	if h.serve != nil && !h.serve.exited() {
		h.mu.Unlock()
		return fmt.Errorf("host %s: %w", h.name, ErrServing)
	}
	h.mu.Unlock()
	argv := append([]string{"serve", "--listen", fmt.Sprintf("0.0.0.0:%d", ServePort), "--insecure", "--name", h.name}, args...)
	logs := new(logBuffer)
	p, err := h.start(h.lab.cfg.Binary, argv, logs)
	if err != nil {
		return err
	}
	p.logs = logs
	h.mu.Lock()
	h.serve = p
	h.mu.Unlock()
	h.lab.logf("lab: host %s: serve %s (pid %d)", h.name, strings.Join(args, " "), p.cmd.Process.Pid)
	for {
		probe, cancel := context.WithTimeout(ctx, time.Second)
		_, err := h.Status(probe)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("host %s: %w before answering: %v\n%s", h.name, ErrExited, p.err, logs)
		case <-ctx.Done():
			_ = h.Kill(context.Background())
			return fmt.Errorf("host %s: serve did not answer: %w (last: %v)\n%s", h.name, ctx.Err(), err, logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Logs returns what the host's latest serve wrote to stdout and stderr.
func (h *Host) Logs() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.serve == nil || h.serve.logs == nil {
		return ""
	}
	return h.serve.logs.String()
}

// Pid is the process id of the host's latest serve, 0 if none started.
func (h *Host) Pid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.serve == nil {
		return 0
	}
	return h.serve.cmd.Process.Pid
}

// Stop ends serve with SIGTERM, so it flushes its trace file, and waits;
// if ctx ends first it kills it. A serve that exits with a failure is an
// error.
func (h *Host) Stop(ctx context.Context) error {
	p, err := h.running()
	if err != nil {
		return err
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // it may have just exited
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("host %s: serve: %w", h.name, p.err)
		}
		return nil
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("host %s: serve ignored SIGTERM: %w", h.name, ctx.Err())
	}
}

// Kill ends serve with SIGKILL, as a crash would, and waits for it.
func (h *Host) Kill(ctx context.Context) error {
	p, err := h.running()
	if err != nil {
		return err
	}
	_ = p.cmd.Process.Kill() // it may have just exited
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("host %s: waiting for the killed serve: %w", h.name, ctx.Err())
	}
}

func (h *Host) running() (*process, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.serve == nil || h.serve.exited() {
		return nil, fmt.Errorf("host %s: %w", h.name, ErrNotServing)
	}
	return h.serve, nil
}

// stopAll ends every process the host started: SIGTERM, then SIGKILL
// after a grace period.
func (h *Host) stopAll(ctx context.Context) error {
	h.mu.Lock()
	procs := slices.Clone(h.procs)
	h.mu.Unlock()
	for _, p := range procs {
		if !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	grace, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	for _, p := range procs {
		select {
		case <-p.done:
			continue
		case <-grace.Done():
		}
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("host %s: pid %d outlived SIGKILL: %w", h.name, p.cmd.Process.Pid, ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

// remove deletes the management veth and the namespace.
func (h *Host) remove(ctx context.Context) error {
	h.mu.Lock()
	if h.nsFile != nil {
		h.nsFile.Close()
		h.nsFile = nil
	}
	h.mu.Unlock()
	// Deleting the root end takes mgmt0 with it at once; the namespace's
	// own teardown is asynchronous.
	err := deleteLink(ctx, "", h.rootIf)
	if _, serr := os.Stat("/run/netns/" + h.ns); serr == nil {
		err = errors.Join(err, removeNamespace(ctx, h.ns))
	}
	h.lab.logf("lab: host %s removed", h.name)
	return err
}

// Status is GET /v1/instance.
func (h *Host) Status(ctx context.Context) (server.InstanceStatus, error) {
	st, err := h.client().Instance(ctx)
	return st, h.apiErr(err)
}

// Migrate asks the host's serve to pull the VM from the serve at source
// (POST /v1/migrate) and returns the migration's id. source is as the
// host reaches it: Link.ServeAddr or Proxy.Addr.
func (h *Host) Migrate(ctx context.Context, source string) (string, error) {
	id, err := h.client().StartMigration(ctx, server.MigrateRequest{Source: source})
	return id, h.apiErr(err)
}

// WaitMigration polls the host's status until migration id has ended
// there, and returns that status.
func (h *Host) WaitMigration(ctx context.Context, id string) (server.InstanceStatus, error) {
	for {
		st, err := h.Status(ctx)
		if err == nil && st.Migration != nil && st.Migration.ID == id && st.Migration.Result != server.ResultRunning {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("host %s: waiting for migration %s: %w (last status: %+v, err %v)", h.name, id, ctx.Err(), st, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// client is the host's serve API, through the lab's client, which dials
// only the lab's own hosts.
func (h *Host) client() *server.Client {
	return server.NewClient(h.APIAddr(), h.lab.client, false)
}

// apiErr names the host in err, and marks a non-2xx answer ErrHTTP.
func (h *Host) apiErr(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *server.APIError
	if errors.As(err, &apiErr) {
		return fmt.Errorf("host %s: %w: %w", h.name, ErrHTTP, err)
	}
	return fmt.Errorf("host %s: %w", h.name, err)
}

// logBuffer collects a process's output for Logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
