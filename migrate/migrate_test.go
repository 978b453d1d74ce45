package migrate

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// pair is a source VM served on a loopback listener and a dialer for the
// destination, the shape the server gives a migration.
type pair struct {
	srcVM   *sim.VM
	backend *sim.Backend
	ln      net.Listener
	srcRes  chan sourceOutcome
}

type sourceOutcome struct {
	res *model.Side
	err error
}

func newPair(t *testing.T, cfg Config, opts ...sim.Option) *pair {
	t.Helper()
	backend, err := sim.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := backend.NewVM(backend.DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Boot(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vm.Destroy() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p := &pair{srcVM: vm, backend: backend, ln: ln, srcRes: make(chan sourceOutcome, 1)}
	return p
}

// serve accepts one migration stream and runs the source on it.
func (p *pair) serve(ctx context.Context, id ID, cfg Config, wrap func(net.Conn) net.Conn) {
	go func() {
		nc, err := p.ln.Accept()
		if err != nil {
			p.srcRes <- sourceOutcome{err: err}
			return
		}
		if wrap != nil {
			nc = wrap(nc)
		}
		res, err := RunSource(ctx, nc, p.srcVM, id, cfg)
		p.srcRes <- sourceOutcome{res, err}
	}()
}

func (p *pair) dialer() Dialer {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", p.ln.Addr().String())
	}
}

func TestFullMigration(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	cfg := Config{Tracer: tp.Tracer(schema.ScopeName), IOTimeout: 10 * time.Second}
	p := newPair(t, cfg, sim.WithMemory(16<<20), sim.WithDirtyRate(8<<20))
	ctx := context.Background()
	id := NewID()
	p.serve(ctx, id, cfg, nil)

	time.Sleep(20 * time.Millisecond) // let the guest dirty some memory
	vm, dres, err := RunDestination(ctx, p.dialer(), p.backend, id, cfg)
	if err != nil {
		t.Fatalf("destination: %v", err)
	}
	defer vm.Destroy()
	out := <-p.srcRes
	if out.err != nil {
		t.Fatalf("source: %v", out.err)
	}
	if vm.State() != vmm.StateRunning {
		t.Errorf("destination VM is %v, want running", vm.State())
	}
	if p.srcVM.State() != vmm.StateDestroyed {
		t.Errorf("source VM is %v after migrating out, want destroyed", p.srcVM.State())
	}
	if !dres.Verified() || !dres.Continuity.TSCMonotonic {
		t.Errorf("destination not verified: %+v", dres)
	}
	if len(out.res.Phases) != 9 || len(dres.Phases) != 8 {
		t.Errorf("phases: source %d, destination %d", len(out.res.Phases), len(dres.Phases))
	}
	if !dres.HasTimeData() {
		t.Fatalf("stages: %+v", dres.Stages)
	}
	mig, usr, krn := dres.Stages[0], dres.Stages[1], dres.Stages[2]
	if usr.GuestTSC != mig.GuestTSC+usr.GuestTSCDelta || krn.GuestTSC != usr.GuestTSC+krn.GuestTSCDelta {
		t.Errorf("stage TSCs do not chain: %+v", dres.Stages)
	}
	if krn.BootHrtime != usr.BootHrtime {
		t.Errorf("kernel changed boot_hrtime: %d vs %d", krn.BootHrtime, usr.BootHrtime)
	}
	if dres.Blackout == nil || dres.Blackout.Ns <= 0 || out.res.DowntimeNs <= 0 {
		t.Errorf("blackout %+v, downtime %v", dres.Blackout, out.res.DowntimeNs)
	}
	if _, err := sim.VerifyMemory(vm); err != nil {
		t.Errorf("destination memory: %v", err)
	}
	// One migration span per side, one span per phase.
	names := map[string]int{}
	for _, s := range rec.Ended() {
		names[s.Name()]++
	}
	if names[schema.SpanMigration] != 2 || names["Sync"] != 2 || names["Pause"] != 1 || names["Finish"] != 2 {
		t.Errorf("span names: %v", names)
	}
}

// failingConn fails every operation after n bytes have been written.
type failingConn struct {
	net.Conn
	budget int
}

func (c *failingConn) Write(b []byte) (int, error) {
	if c.budget <= 0 {
		c.Conn.Close()
		return 0, errors.New("injected drop")
	}
	if len(b) > c.budget {
		n, _ := c.Conn.Write(b[:c.budget])
		c.budget = 0
		c.Conn.Close()
		return n, errors.New("injected drop")
	}
	c.budget -= len(b)
	return c.Conn.Write(b)
}

// A source connection cut mid-frame (during the handshake, Sync and the
// first round, whose 16 TSC-ring pages alone are 64 KiB) fails the
// migration and leaves the source VM running.
func TestSourceDropLeavesVMRunning(t *testing.T) {
	cfg := Config{IOTimeout: 5 * time.Second}
	for _, budget := range []int{100, 1000, 20 << 10} {
		p := newPair(t, cfg, sim.WithMemory(8<<20), sim.WithDirtyRate(4<<20))
		// The budget must run out: on a busy machine a guest that has not
		// yet run sends little more than zero markers, under 20 KiB.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if n, err := p.srcVM.DirtyCount(); err != nil || n > 2*sim.RingPages || time.Now().After(deadline) {
				break
			}
		}
		ctx := context.Background()
		id := NewID()
		p.serve(ctx, id, cfg, func(nc net.Conn) net.Conn { return &failingConn{Conn: nc, budget: budget} })
		_, _, err := RunDestination(ctx, p.dialer(), p.backend, id, cfg)
		if err == nil {
			t.Fatalf("budget %d: migration succeeded through a dropped connection", budget)
		}
		out := <-p.srcRes
		if out.err == nil {
			t.Fatalf("budget %d: source reported success", budget)
		}
		if p.srcVM.State() != vmm.StateRunning {
			t.Errorf("budget %d: source VM %v after failure, want running", budget, p.srcVM.State())
		}
		if _, ok := FailedPhase(out.err); !ok {
			t.Errorf("budget %d: source error names no phase: %v", budget, out.err)
		}
	}
}
