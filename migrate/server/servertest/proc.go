package servertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
)

// The bounds of the waits on a serve process. They are generous: the
// machines that run the tests are small and shared, and they only matter
// when something hangs.
const (
	// StartTimeout bounds how long Start waits for the API to answer.
	StartTimeout = 30 * time.Second
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 30 * time.Second
	// requestTimeout bounds each API request of the helpers.
	requestTimeout = 5 * time.Second
)

// Options configures a serve process.
type Options struct {
	// Args follow "serve". A --listen among them is used as given (its
	// port must be free); otherwise Start picks a free loopback port.
	Args []string
	// Env is added to the process's environment.
	Env []string
	// Name, if set, is passed as --name, and Start waits for a server
	// answering with that name: proof that this process answers and not
	// another one that took the port first.
	Name string
	// TLS is the client configuration for a server started with
	// --tls-cert, --tls-key and --tls-ca: the helpers then use https.
	TLS *tls.Config
	// Wrap, if set, is a command that runs the binary: it gets the binary
	// and its arguments after its own, e.g. a shell that sets a ulimit
	// and execs "$0" "$@".
	Wrap []string
}

// Proc is a running `migtrace serve`.
type Proc struct {
	name   string
	addr   string // where to dial its API
	cmd    *exec.Cmd
	out    lockedBuffer
	tr     *http.Transport
	client *server.Client

	exited chan struct{}
	err    error // the exit status, once exited is closed

	mu sync.Mutex
	// killed: Kill ended the process, so its exit status is no failure.
	killed bool
	// stopped: the test called Stop and so saw the exit status itself.
	stopped bool
}

// Start runs `bin serve` with opts and returns once its API answers; it
// fails tb if the process exits or does not answer within StartTimeout.
// When the test ends the process is stopped as by Stop, an exit status
// Stop would return fails the test, and if the test failed its stderr is
// logged.
func Start(tb testing.TB, bin string, opts Options) *Proc {
	tb.Helper()
	p, err := Launch(context.Background(), tb, bin, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// Launch is Start for use off the test's goroutine: it returns an error
// instead of failing tb (it still registers the cleanup on tb), and ctx
// can cut the wait for the API short.
func Launch(ctx context.Context, tb testing.TB, bin string, opts Options) (*Proc, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()

	args := append([]string{"serve"}, opts.Args...)
	listen, ok := listenArg(opts.Args)
	if !ok {
		addrs, err := freeAddrs(1)
		if err != nil {
			return nil, err
		}
		listen = addrs[0]
		args = append(args, "--listen", listen)
	}
	addr, err := dialAddr(listen)
	if err != nil {
		return nil, err
	}
	if opts.Name != "" {
		args = append(args, "--name", opts.Name)
	}

	p := &Proc{name: opts.Name, addr: addr, exited: make(chan struct{})}
	p.tr = &http.Transport{TLSClientConfig: opts.TLS}
	p.client = server.NewClient(addr, &http.Client{Timeout: requestTimeout, Transport: p.tr}, opts.TLS != nil)
	argv := append([]string{bin}, args...)
	if len(opts.Wrap) > 0 {
		argv = append(append([]string(nil), opts.Wrap...), argv...)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	if len(opts.Env) > 0 {
		p.cmd.Env = append(os.Environ(), opts.Env...)
	}
	// serve writes only to stderr; stdout joins it so nothing is lost.
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", p, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	tb.Cleanup(func() { p.cleanup(tb) })

	for {
		st, err := p.client.Instance(ctx)
		if err == nil {
			if opts.Name == "" || st.Name == opts.Name {
				return p, nil
			}
			err = fmt.Errorf("%s answers as %q: another server has the port", addr, st.Name)
		}
		select {
		case <-p.exited:
			return nil, p.failed(fmt.Errorf("%s exited before its API answered: %v\n%s", p, p.err, p.Stderr()))
		case <-ctx.Done():
			_ = p.Kill()
			return nil, p.failed(fmt.Errorf("%s: API not answering within %v: %v\n%s", p, StartTimeout, err, p.Stderr()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// failed marks the exit status as seen by the caller, who gets err: the
// cleanup does not report it again.
func (p *Proc) failed(err error) error {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	return err
}

// listenArg returns the value of a --listen flag among args.
func listenArg(args []string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--listen="); ok {
			return v, true
		}
		if a == "--listen" && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// dialAddr is where a client on this host reaches a server listening on
// listen: loopback for an unspecified host (0.0.0.0, ::).
func dialAddr(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// String names the process in messages.
func (p *Proc) String() string {
	if p.name != "" {
		return fmt.Sprintf("serve %s (%s)", p.name, p.addr)
	}
	return "serve " + p.addr
}

// Addr is the address a client dials to reach the server (HOST:PORT).
func (p *Proc) Addr() string { return p.addr }

// PID is the process id, for tracers to attach to.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Stderr returns what the process has written so far.
func (p *Proc) Stderr() string { return p.out.String() }

// Client talks to the server's API (over TLS if Options.TLS was set).
func (p *Proc) Client() *server.Client { return p.client }

// Status returns the server's GET /v1/instance; it fails tb on error.
func (p *Proc) Status(tb testing.TB) server.InstanceStatus {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	st, err := p.client.Instance(ctx)
	if err != nil {
		tb.Fatalf("%s: %v", p, err)
	}
	return st
}

// Await polls the server's status until ok accepts it and returns it; it
// fails tb when timeout passes first.
func (p *Proc) Await(tb testing.TB, timeout time.Duration, ok func(server.InstanceStatus) bool) server.InstanceStatus {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := Await(ctx, p.client, ok)
	if err != nil {
		tb.Fatalf("%s: %v", p, err)
	}
	return st
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it
// to exit. Its exit status then fails nothing.
func (p *Proc) Kill() error {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s: %w", p, err)
	}
	<-p.exited
	return nil
}

// Stop sends SIGTERM, on which serve flushes its trace file and exits,
// and waits for the exit. If the process is still running StopTimeout
// later or when ctx ends, it is killed. The error says so, or that it
// exited with a failure status, with what it wrote to stderr. A process
// that already exited returns its status again.
func (p *Proc) Stop(ctx context.Context) error {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	return p.stop(ctx)
}

func (p *Proc) stop(ctx context.Context) error {
	select {
	case <-p.exited:
		return p.exitErr()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(StopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
		return p.exitErr()
	case <-timer.C:
	case <-ctx.Done():
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s still running after SIGTERM; killed\n%s", p, p.Stderr())
}

func (p *Proc) exitErr() error {
	p.mu.Lock()
	killed := p.killed
	p.mu.Unlock()
	if p.err == nil || killed {
		return nil
	}
	return fmt.Errorf("%s: %w\n%s", p, p.err, p.Stderr())
}

// cleanup stops the process at the end of the test. An exit status the
// test saw through Stop is not reported twice.
func (p *Proc) cleanup(tb testing.TB) {
	err := p.stop(context.Background())
	p.mu.Lock()
	seen := p.stopped
	p.mu.Unlock()
	if err != nil && !seen {
		tb.Error(err)
	}
	p.tr.CloseIdleConnections()
	if tb.Failed() {
		tb.Logf("%s stderr:\n%s", p, p.Stderr())
	}
}

// lockedBuffer collects a process's output, readable while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreeAddr returns a loopback address (127.0.0.1:PORT) whose port was
// free a moment ago; nothing listens there.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return FreeAddrs(tb, 1)[0]
}

// FreeAddrs returns n distinct free loopback addresses: each port stays
// bound until all are picked, so no two are the same.
func FreeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	addrs, err := freeAddrs(n)
	if err != nil {
		tb.Fatal(err)
	}
	return addrs
}

func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free loopback port: %w", err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs, nil
}
