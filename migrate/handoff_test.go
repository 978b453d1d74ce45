package migrate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/schema"
)

// cutPoint is where the handoff loses the stream: just before, or just
// after, one side writes one message of the Finish phase.
type cutPoint struct {
	name   string
	writer schema.Role // the side whose write is cut
	msg    wire.Type
	after  bool // the message is delivered, then the stream is lost
	// wantOn is the side that runs the guest in the end.
	wantOn schema.Role
	// verify is the source's memory verification ("" the default); with
	// VerifyAfter the source still sends its digest after Resumed, and
	// wantLate is the destination's verdict on it.
	verify   VerifyMemory
	wantLate string
	// lie: the source's record serves a digest other than its memory's.
	lie bool
}

var handoffCuts = []cutPoint{
	{"before Finish", schema.RoleSource, wire.TypeFinish, false, schema.RoleSource, "", "", false},
	{"after Finish, before Okay", schema.RoleDestination, wire.TypeOkay, false, schema.RoleSource, "", "", false},
	{"after Okay, before Handoff", schema.RoleSource, wire.TypeHandoff, false, schema.RoleDestination, "", "", false},
	{"after Handoff, before Resumed", schema.RoleDestination, wire.TypeResumed, false, schema.RoleDestination, "", "", false},
	{"after Resumed", schema.RoleDestination, wire.TypeResumed, true, schema.RoleDestination, "", "", false},
	// The digest that never came over the stream is taken from the
	// source's record, once the partition heals; a record that lies is
	// caught as a mismatch, not believed.
	{"after Resumed, before MemoryDigest", schema.RoleSource, wire.TypeMemoryDigest, false, schema.RoleDestination,
		VerifyAfter, schema.MemoryLateMatch, false},
	{name: "after Resumed, before MemoryDigest, the record lies", writer: schema.RoleSource, msg: wire.TypeMemoryDigest,
		wantOn: schema.RoleDestination, verify: VerifyAfter, wantLate: schema.MemoryLateMismatch, lie: true},
	{"after MemoryDigest", schema.RoleSource, wire.TypeMemoryDigest, true, schema.RoleDestination,
		VerifyAfter, schema.MemoryLateMatch, false},
	{"before MemoryCheck", schema.RoleSource, wire.TypeMemoryCheck, false, schema.RoleSource, "", "", false},
}

// fault is what happens at a cut point.
type handoffFault int

const (
	faultDropStream handoffFault = iota // the connection is closed; both servers live
	faultPartition                      // nothing passes either way for a while, then it heals
)

// partitionFor is how long a partition lasts: long beside the streams'
// deadline, so the handoff must be settled through the API after it heals.
const (
	partitionFor     = 10 * time.Second
	handoffIOTimeout = 2 * time.Second
)

// handoffCutter cuts one side's stream at a cut point, once the Finish
// phase has begun on that side (Okay is sent in other phases too).
type handoffCutter struct {
	cut   cutPoint
	fault handoffFault
	// partitioned is set for the partition's length; the sides' API
	// queries fail while it is.
	partitioned *atomic.Bool

	mu     sync.Mutex
	armed  bool
	fired  bool
	nc     net.Conn
	healed chan struct{}
}

func (c *handoffCutter) progress(p Progress) {
	if p.Phase == schema.PhaseFinish {
		c.mu.Lock()
		c.armed = true
		c.mu.Unlock()
	}
}

// install puts the cutter on the writer's side of pair p: it returns the
// source's connection wrapper and the destination's dialer to run with.
func (c *handoffCutter) install(p *pair, srcCfg, dstCfg *Config) (func(net.Conn) net.Conn, Dialer) {
	if c.cut.writer == schema.RoleSource {
		srcCfg.Progress = c.progress
		return c.wrap, p.dialer()
	}
	dstCfg.Progress = c.progress
	inner := p.dialer()
	return func(nc net.Conn) net.Conn { return nc }, func(ctx context.Context) (net.Conn, error) {
		nc, err := inner(ctx)
		if err != nil {
			return nil, err
		}
		return c.wrap(nc), nil
	}
}

func (c *handoffCutter) wrap(nc net.Conn) net.Conn {
	c.mu.Lock()
	c.nc = nc
	c.mu.Unlock()
	return &cuttingConn{Conn: nc, c: c}
}

type cuttingConn struct {
	net.Conn
	c *handoffCutter
}

// Write sees one whole frame per call (wire.Conn writes each in one).
func (w *cuttingConn) Write(b []byte) (int, error) {
	c := w.c
	c.mu.Lock()
	hit := c.armed && !c.fired && len(b) >= wire.HeaderSize && wire.Type(b[0]) == c.cut.msg
	if hit {
		c.fired = true
	}
	c.mu.Unlock()
	if !hit {
		return w.Conn.Write(b)
	}
	if c.cut.after {
		if n, err := w.Conn.Write(b); err != nil {
			return n, err
		}
	}
	switch c.fault {
	case faultDropStream:
		w.Conn.Close()
		if c.cut.after {
			return len(b), nil
		}
		return 0, net.ErrClosed
	default: // faultPartition: hold the frame until the partition heals
		c.partitioned.Store(true)
		time.Sleep(partitionFor)
		c.partitioned.Store(false)
		close(c.healed)
		if c.cut.after {
			return len(b), nil
		}
		return w.Conn.Write(b)
	}
}

// recordingBackend keeps the VMs it creates, so a test can watch the
// destination's guest before RunDestination returns.
type recordingBackend struct {
	vmm.Backend
	mu  sync.Mutex
	vms []vmm.VM
}

func (b *recordingBackend) New(spec vmm.Spec) (vmm.VM, error) {
	vm, err := b.Backend.New(spec)
	if err == nil {
		b.mu.Lock()
		b.vms = append(b.vms, vm)
		b.mu.Unlock()
	}
	return vm, err
}

func (b *recordingBackend) running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, vm := range b.vms {
		if vm.State() == vmm.StateRunning {
			return true
		}
	}
	return false
}

// TestHandoffCutPoints loses the stream at every point of the handoff, by
// a dropped connection and by a partition that heals, with both servers
// alive and asking each other's handoff record (as the server's API
// serves it). At every instant the guest runs on at most one side; in the
// end it runs on exactly one, the one the cut point implies, without any
// operator, and the source's memory is intact when it keeps the guest.
func TestHandoffCutPoints(t *testing.T) {
	for _, fault := range []handoffFault{faultDropStream, faultPartition} {
		for _, cut := range handoffCuts {
			name := "drop/" + cut.name
			if fault == faultPartition {
				name = "partition/" + cut.name
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				testHandoffCut(t, cut, fault)
			})
		}
	}
}

func testHandoffCut(t *testing.T, cut cutPoint, fault handoffFault) {
	p := newPair(t, Config{}, sim.WithMemory(4<<20), sim.WithDirtyRate(0))
	pages := p.srcVM.Spec().Pages() - sim.RingPages
	before, err := vmm.ChecksumPages(p.srcVM, sim.RingPages, pages)
	if err != nil {
		t.Fatal(err)
	}
	var partitioned atomic.Bool
	cutter := &handoffCutter{cut: cut, fault: fault, partitioned: &partitioned, healed: make(chan struct{})}
	srcH, dstH := NewHandoff(), NewHandoff()
	// Each side asks the other's record, as the server's API serves it,
	// unless the partition is on.
	asker := func(h *Handoff) AskPeer {
		return func(ctx context.Context, _ string, _ ID) (HandoffState, error) {
			if partitioned.Load() {
				return "", errors.New("partitioned")
			}
			st, _ := h.State()
			return st, nil
		}
	}
	srcCfg := Config{IOTimeout: handoffIOTimeout, Handoff: srcH, AskPeer: asker(dstH), Name: "src", Address: "src-api",
		VerifyMemory: cut.verify}
	dstCfg := Config{IOTimeout: handoffIOTimeout, Handoff: dstH, AskPeer: asker(srcH), PeerAPI: "src-api", Name: "dst", Address: "dst-api",
		AskPeerDigest: func(context.Context, string, ID) (MemoryDigest, bool, error) {
			if partitioned.Load() {
				return MemoryDigest{}, false, errors.New("partitioned")
			}
			d, ok := srcH.Digest()
			if cut.lie {
				d.Checksum[0] ^= 1
			}
			return d, ok, nil
		}}
	srcWrap, dial := cutter.install(p, &srcCfg, &dstCfg)
	backend := &recordingBackend{Backend: p.backend}

	// Watch both guests for the whole migration: never both running.
	stop := make(chan struct{})
	var both atomic.Int64
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if p.srcVM.State() == vmm.StateRunning && backend.running() {
				both.Add(1)
			}
			time.Sleep(200 * time.Microsecond)
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := NewID()
	p.serve(ctx, id, srcCfg, srcWrap)
	vm, dres, dstErr := RunDestination(ctx, dial, backend, id, dstCfg)
	out := <-p.srcRes
	close(stop)
	<-watched
	if vm != nil {
		t.Cleanup(func() { _ = vm.Destroy() })
	}
	if n := both.Load(); n > 0 {
		t.Errorf("the guest ran on both sides at once (%d samples)", n)
	}
	if !cutter.fired {
		t.Fatalf("the cut at %q never happened", cut.name)
	}
	srcState, dstState := p.srcVM.State(), vmm.StateDestroyed
	if vm != nil {
		dstState = vm.State()
	}
	sh, _ := srcH.State()
	dh, _ := dstH.State()
	t.Logf("source: %v (%s, %v); destination: %v (%s, %v)", srcState, sh, out.err, dstState, dh, dstErr)
	switch cut.wantOn {
	case schema.RoleSource:
		if srcState != vmm.StateRunning || vm != nil || dstErr == nil || out.err == nil {
			t.Fatalf("want the guest on the source only: source %v (err %v), destination VM %v (err %v)", srcState, out.err, dstState, dstErr)
		}
		if sh != HandoffAborted {
			t.Errorf("source handoff record %q, want %q", sh, HandoffAborted)
		}
		after, err := vmm.ChecksumPages(p.srcVM, sim.RingPages, pages)
		if err != nil || after != before {
			t.Errorf("source memory changed by the failed migration (%v)", err)
		}
	case schema.RoleDestination:
		if vm == nil || dstState != vmm.StateRunning || srcState != vmm.StateDestroyed || dstErr != nil || out.err != nil {
			t.Fatalf("want the guest on the destination only: source %v (err %v), destination %v (err %v)", srcState, out.err, dstState, dstErr)
		}
		if sh != HandoffCompleted || dh != HandoffResumed {
			t.Errorf("handoff records: source %q, destination %q; want %q and %q", sh, dh, HandoffCompleted, HandoffResumed)
		}
		if got := dres.MemoryLate; cut.wantLate != "" && (got == nil || got.Result != cut.wantLate) {
			t.Errorf("check after the handoff %+v, want %s", got, cut.wantLate)
		}
	}
	// Each side's model records its last handoff state, as its trace will.
	if out.res == nil || out.res.Handoff != string(sh) || dres == nil || dres.Handoff != string(dh) {
		t.Errorf("the models record the handoff as %+v and %+v, want %q and %q", out.res, dres, sh, dh)
	}
	if _, pending := srcH.State(); pending {
		t.Error("the source is still pending")
	}
	if _, pending := dstH.State(); pending {
		t.Error("the destination is still pending")
	}
}

// TestHandoffOperatorResolution: when the peer cannot be asked (it died),
// a pending side holds the paused guest until an operator settles it, and
// an operator's resolution is refused while nothing is pending.
func TestHandoffOperatorResolution(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  cutPoint
		// side resolved and how: the survivor of a dead peer.
		resolve    schema.Role
		resolution Resolution
	}{
		// The source died after its commit: the destination resumes.
		{"destination commits", handoffCuts[2], schema.RoleDestination, ResolveCommit},
		// The destination died before resuming: the source resumes.
		{"source aborts", handoffCuts[3], schema.RoleSource, ResolveAbort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPair(t, Config{}, sim.WithMemory(4<<20), sim.WithDirtyRate(0))
			cutter := &handoffCutter{cut: tc.cut, fault: faultDropStream, partitioned: new(atomic.Bool)}
			srcH, dstH := NewHandoff(), NewHandoff()
			dead := func(context.Context, string, ID) (HandoffState, error) { return "", errors.New("connection refused") }
			srcCfg := Config{IOTimeout: handoffIOTimeout, Handoff: srcH, AskPeer: dead, Address: "src-api"}
			dstCfg := Config{IOTimeout: handoffIOTimeout, Handoff: dstH, AskPeer: dead, PeerAPI: "src-api", Address: "dst-api"}
			srcWrap, dial := cutter.install(p, &srcCfg, &dstCfg)
			if err := srcH.Resolve(ResolveAbort); !errors.Is(err, ErrNotPending) {
				t.Fatalf("resolving before the handoff: %v, want ErrNotPending", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			id := NewID()
			p.serve(ctx, id, srcCfg, srcWrap)
			type result struct {
				vm  vmm.VM
				err error
			}
			dstDone := make(chan result, 1)
			go func() {
				vm, _, err := RunDestination(ctx, dial, p.backend, id, dstCfg)
				dstDone <- result{vm, err}
			}()
			// The peer is "dead" to the resolved side: it stays pending.
			pendingH := dstH
			if tc.resolve == schema.RoleSource {
				pendingH = srcH
			}
			waitPending(t, pendingH)
			time.Sleep(3 * handoffPollMax) // still pending after several queries
			if st, pending := pendingH.State(); !pending {
				t.Fatalf("%s settled on its own (%s) with its peer unreachable", tc.resolve, st)
			}
			if err := pendingH.Resolve(tc.resolution); err != nil {
				t.Fatal(err)
			}
			var d result
			var srcOut sourceOutcome
			switch tc.resolve {
			case schema.RoleDestination:
				d = <-dstDone
				if d.err != nil || d.vm == nil || d.vm.State() != vmm.StateRunning {
					t.Fatalf("destination after commit: %v, %v", d.vm, d.err)
				}
				defer d.vm.Destroy()
				// The source, committed and unable to ask, stays paused until told.
				waitPending(t, srcH)
				if st := p.srcVM.State(); st != vmm.StatePaused {
					t.Fatalf("committed source VM is %v, want paused", st)
				}
				if err := srcH.Resolve(ResolveCommit); err != nil {
					t.Fatal(err)
				}
				srcOut = <-p.srcRes
				if srcOut.err != nil || p.srcVM.State() != vmm.StateDestroyed {
					t.Fatalf("source after commit: %v, VM %v", srcOut.err, p.srcVM.State())
				}
			case schema.RoleSource:
				srcOut = <-p.srcRes
				if srcOut.err == nil || p.srcVM.State() != vmm.StateRunning {
					t.Fatalf("source after abort: %v, VM %v", srcOut.err, p.srcVM.State())
				}
				// The destination resumed before its Resumed was cut; it
				// would not normally be alive here, but it must never have
				// been told to give the guest up.
				d = <-dstDone
				if d.vm != nil {
					_ = d.vm.Destroy()
				}
			}
		})
	}
}

func waitPending(t *testing.T, h *Handoff) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, pending := h.State(); pending {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	st, _ := h.State()
	t.Fatal(fmt.Sprintf("never pending (state %q)", st))
}

// linkHandoffs gives both sides handoff records and lets each ask the
// other's, as two servers' APIs do, so a fault during the handoff settles
// as it would between live servers.
func linkHandoffs(src, dst *Config) {
	src.Handoff, dst.Handoff = NewHandoff(), NewHandoff()
	ask := func(h *Handoff) AskPeer {
		return func(context.Context, string, ID) (HandoffState, error) {
			st, _ := h.State()
			return st, nil
		}
	}
	src.AskPeer, dst.AskPeer = ask(dst.Handoff), ask(src.Handoff)
	dst.PeerAPI, dst.Address = "source-api", "destination-api"
}

// A destination listening on every address advertises an unspecified
// host; the source asks it at the host its stream came from instead, or
// a lost Resumed would have it ask its own server forever.
func TestReachableAPI(t *testing.T) {
	tests := []struct {
		advertised, streamPeer, want string
	}{
		{"[::]:7100", "10.199.0.10:51234", "10.199.0.10:7100"},
		{"0.0.0.0:7100", "10.199.0.10:51234", "10.199.0.10:7100"},
		{":7100", "[fd00::2]:40000", "[fd00::2]:7100"},
		{"10.199.0.6:7100", "10.199.0.10:51234", "10.199.0.6:7100"},
		{"dst.example:7100", "10.199.0.10:51234", "dst.example:7100"},
		{"[::]:7100", "not an address", "[::]:7100"},
		{"garbage", "10.199.0.10:51234", "garbage"},
	}
	for _, tc := range tests {
		if got := reachableAPI(tc.advertised, tc.streamPeer); got != tc.want {
			t.Errorf("reachableAPI(%q, %q) = %q, want %q", tc.advertised, tc.streamPeer, got, tc.want)
		}
	}
}
