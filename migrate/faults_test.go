package migrate

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/schema"
)

// fault is what a faultConn does to its side's stream once armed.
type fault int

const (
	// faultDrop closes the connection.
	faultDrop fault = iota
	// faultStall holds the next write back until well after the peer's
	// I/O deadline has fired.
	faultStall
	// faultCorruptType flips the low bit of the next frame's type, which
	// mostly turns it into another valid type.
	faultCorruptType
	// faultCorruptLength flips the low bit of the next frame's payload
	// length, shifting every later frame boundary.
	faultCorruptLength
	// faultCorruptPayload flips the last byte of the next frame that has a
	// payload.
	faultCorruptPayload
	// faultCorruptPage flips the last byte of page data in the next
	// PageData or PageList frame: guest memory content, which only the
	// handoff checksum can catch.
	faultCorruptPage
	// faultCorruptGuestTSC moves the guest TSC in the next TimeData frame
	// forward by 2^32 to 2^40 ticks (it sets one clear bit): a plausible
	// value no range check can refuse, which only an integrity check over
	// the time data could catch.
	faultCorruptGuestTSC
)

var faultNames = map[fault]string{
	faultDrop: "drop", faultStall: "stall", faultCorruptType: "corrupt-type",
	faultCorruptLength: "corrupt-length", faultCorruptPayload: "corrupt-payload",
	faultCorruptPage: "corrupt-page", faultCorruptGuestTSC: "corrupt-guest-tsc",
}

func (f fault) String() string { return faultNames[f] }

func (f fault) corrupts() bool { return f >= faultCorruptType }

// Both sides' I/O timeout in the matrix. Cases that can only end when a
// deadline fires (a stall; a length that makes the reader wait for bytes
// that never come) use the short one so the matrix stays quick; the rest
// use the long one, so that a loaded machine cannot time them out before
// the fault they test.
const (
	faultShortTimeout = time.Second
	faultLongTimeout  = 5 * time.Second
)

func (f fault) ioTimeout() time.Duration {
	if f == faultStall || f == faultCorruptLength {
		return faultShortTimeout
	}
	return faultLongTimeout
}

// faultConn injects one fault into the frames its side writes, while the
// phase it targets runs. Arming before the connection exists (the
// destination's Sync begins before it dials) takes effect when it does.
type faultConn struct {
	kind  fault
	phase schema.Phase
	// pageFrom makes faultCorruptPage wait for a PageData frame whose
	// last page is at or past it: one that will not be sent again.
	pageFrom uint64

	// peerDone is closed once the peer has given up: a stall lasts until
	// then, so it always outlives the peer's deadline.
	peerDone chan struct{}

	mu    sync.Mutex
	nc    net.Conn
	armed bool
	fired bool
}

func newFaultConn(kind fault, phase schema.Phase) *faultConn {
	return &faultConn{kind: kind, phase: phase, peerDone: make(chan struct{})}
}

// set adopts the side's connection and returns the wrapper to use.
func (f *faultConn) set(nc net.Conn) net.Conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nc = nc
	if f.armed && f.kind == faultDrop {
		f.fired = true
		nc.Close()
	}
	return &faultingConn{Conn: nc, f: f}
}

// progress is the side's Progress hook: it arms the fault as the target
// phase begins and disarms it once the side moves on, so a fault that
// found nothing to act on in its phase is known not to have fired.
func (f *faultConn) progress(p Progress) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.Phase != f.phase {
		// Pause does no I/O: a fault aimed at it acts on the first write
		// after it, in RamPushPostPause.
		if !(f.phase == schema.PhasePause && p.Phase == schema.PhaseRamPushPostPause) {
			f.armed = false
		}
		return
	}
	if f.armed || f.fired {
		return
	}
	f.armed = true
	if f.kind == faultDrop && f.nc != nil {
		f.fired, f.armed = true, false
		f.nc.Close()
	}
}

func (f *faultConn) didFire() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

type faultingConn struct {
	net.Conn
	f *faultConn
}

// Write sees one whole frame per call: wire.Conn writes each frame in a
// single Write.
func (c *faultingConn) Write(b []byte) (int, error) {
	f := c.f
	f.mu.Lock()
	act := f.armed && len(b) >= wire.HeaderSize
	if act {
		switch f.kind {
		case faultCorruptPayload:
			act = len(b) > wire.HeaderSize
		case faultCorruptPage:
			act = lastPageSent(b) >= f.pageFrom && lastPageSent(b) != noPage
		case faultCorruptGuestTSC:
			act = wire.Type(b[0]) == wire.TypeTimeData && len(b) >= wire.HeaderSize+16
		}
	}
	if act {
		f.armed, f.fired = false, true
	}
	f.mu.Unlock()
	if !act {
		return c.Conn.Write(b)
	}
	switch f.kind {
	case faultStall:
		select {
		case <-f.peerDone:
		case <-time.After(10 * faultLongTimeout): // the peer never gave up: the test fails
		}
		return c.Conn.Write(b)
	case faultCorruptType:
		return c.writeFlipped(b, 0, 0x01)
	case faultCorruptLength:
		return c.writeFlipped(b, lengthLowByte, 0x01)
	case faultCorruptPayload:
		return c.writeFlipped(b, len(b)-1, 0x5a)
	case faultCorruptPage:
		// A PageList's page numbers follow its pages.
		at := len(b) - 1
		if wire.Type(b[0]) == wire.TypePageList {
			at -= 8 * int(binary.LittleEndian.Uint32(b[wire.HeaderSize:]))
		}
		return c.writeFlipped(b, at, 0x5a)
	case faultCorruptGuestTSC:
		// GuestTSC follows GuestFreq, little-endian.
		at := wire.HeaderSize + 8
		tsc := binary.LittleEndian.Uint64(b[at:])
		for bit := 32; bit <= 40; bit++ {
			if tsc&(1<<bit) == 0 {
				bad := slices.Clone(b)
				binary.LittleEndian.PutUint64(bad[at:], tsc|1<<bit)
				return c.Conn.Write(bad)
			}
		}
		return c.writeFlipped(b, at+5, 0x01)
	}
	return c.Conn.Write(b)
}

// noPage is lastPageSent's answer for a frame that carries no page data.
const noPage = ^uint64(0)

// lastPageSent is the last page a PageData or PageList frame carries.
func lastPageSent(b []byte) uint64 {
	switch {
	case len(b) >= wire.HeaderSize+12 && wire.Type(b[0]) == wire.TypePageData:
		return binary.LittleEndian.Uint64(b[wire.HeaderSize:]) + uint64(binary.LittleEndian.Uint32(b[wire.HeaderSize+8:])) - 1
	case len(b) >= wire.HeaderSize+4+wire.PageSize+8 && wire.Type(b[0]) == wire.TypePageList:
		return binary.LittleEndian.Uint64(b[len(b)-8:])
	}
	return noPage
}

// lengthLowByte is the last byte of the header's big-endian payload length,
// after type u8, flags u8 and reserved u16.
const lengthLowByte = 7

// writeFlipped writes a copy of b with one byte changed: the caller's
// buffer may be reused guest memory.
func (c *faultingConn) writeFlipped(b []byte, at int, mask byte) (int, error) {
	bad := slices.Clone(b)
	bad[at] ^= mask
	return c.Conn.Write(bad)
}

// phaseIndex orders phases, for "this phase or a later one".
func phaseIndex(p schema.Phase) int { return slices.Index(schema.Phases, p) }

// TestFaultMatrix injects every fault at every phase each side runs, on
// either side, and checks that the migration fails cleanly: the source VM
// runs on with its memory and guest clock intact, the destination holds no
// VM, both errors name a phase and the spans say so.
func TestFaultMatrix(t *testing.T) {
	var cases, skipped int
	var mu sync.Mutex
	t.Cleanup(func() {
		t.Logf("fault matrix: %d cases, %d skipped (nothing to corrupt in that phase)", cases, skipped)
	})
	for _, side := range []schema.Role{schema.RoleSource, schema.RoleDestination} {
		for _, phase := range schema.Phases {
			if !phase.Runs(side) {
				continue
			}
			for kind := faultDrop; kind <= faultCorruptGuestTSC; kind++ {
				if kind == faultCorruptPage && !(side == schema.RoleSource &&
					(phase == schema.PhaseRamPushPrePause || phase == schema.PhaseRamPushPostPause)) {
					continue // only the source sends pages; these two phases always do
				}
				if kind == faultCorruptGuestTSC && !(side == schema.RoleSource && phase == schema.PhaseTimeData) {
					continue
				}
				name := fmt.Sprintf("%s/%s/%s", side, phase, kind)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					defer func() {
						mu.Lock()
						cases++
						if t.Skipped() {
							skipped++
						}
						mu.Unlock()
					}()
					testFault(t, side, phase, kind)
				})
			}
		}
	}
}

// testFault runs one case.
func testFault(t *testing.T, side schema.Role, phase schema.Phase, kind fault) {
	p := newPair(t, Config{}, sim.WithMemory(1<<20), sim.WithDirtyRate(0))
	pages := p.srcVM.Spec().Pages() - sim.RingPages
	// A fresh guest's memory is all zero past the ring and would travel as
	// ZeroPages runs; give it content so PageData frames carry it.
	content := make([]byte, pages*vmm.PageSize)
	for i := range content {
		content[i] = byte(i*7 + i/vmm.PageSize)
	}
	if err := p.srcVM.WritePages(sim.RingPages, content); err != nil {
		t.Fatal(err)
	}
	before, err := vmm.ChecksumPages(p.srcVM, sim.RingPages, pages)
	if err != nil {
		t.Fatal(err)
	}
	srcRec, dstRec := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	srcTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(srcRec))
	dstTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(dstRec))
	srcCfg := Config{IOTimeout: kind.ioTimeout(), Tracer: srcTP.Tracer(schema.ScopeName)}
	dstCfg := Config{IOTimeout: kind.ioTimeout(), Tracer: dstTP.Tracer(schema.ScopeName)}
	linkHandoffs(&srcCfg, &dstCfg)

	f := newFaultConn(kind, phase)
	if phase == schema.PhaseRamPushPrePause {
		// The idle guest still writes its TSC ring, so ring pages go out
		// again after the pause and would mend a corrupted copy.
		f.pageFrom = sim.RingPages
	}
	srcWrap, dstWrap := func(nc net.Conn) net.Conn { return nc }, func(nc net.Conn) net.Conn { return nc }
	if side == schema.RoleSource {
		srcCfg.Progress, srcWrap = f.progress, f.set
		if kind == faultCorruptPage && phase == schema.PhaseRamPushPostPause {
			// The idle guest may not have touched its ring since the last
			// pre-copy round; mark one page dirty as the source pauses so
			// the paused round always carries page data.
			srcCfg.Progress = func(pr Progress) {
				if pr.Phase == schema.PhasePause {
					if err := p.srcVM.RestoreDirty(sim.RingPages, 1, []uint64{1}); err != nil {
						t.Error(err)
					}
				}
				f.progress(pr)
			}
		}
	} else {
		dstCfg.Progress, dstWrap = f.progress, f.set
	}
	ctx := context.Background()
	id := NewID()
	p.serve(ctx, id, srcCfg, srcWrap)
	srcOut := make(chan sourceOutcome, 1)
	go func() {
		out := <-p.srcRes
		if side == schema.RoleDestination {
			close(f.peerDone)
		}
		srcOut <- out
	}()
	dial := p.dialer()
	vm, dres, dstErr := RunDestination(ctx, func(ctx context.Context) (net.Conn, error) {
		nc, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		return dstWrap(nc), nil
	}, p.backend, id, dstCfg)
	if side == schema.RoleSource {
		close(f.peerDone)
	}
	out := <-srcOut

	if !f.didFire() {
		if kind == faultCorruptPayload {
			// Some phases write only payload-less frames (Okay) on this
			// side; there is nothing to corrupt there.
			if vm != nil {
				_ = vm.Destroy()
			}
			t.Skipf("%s writes no frame with a payload in %s", side, phase)
		}
		t.Fatalf("the %s fault never fired in %s (source err %v, destination err %v)", kind, phase, out.err, dstErr)
	}
	if dstErr == nil || out.err == nil {
		if vm != nil {
			got, err := vmm.ChecksumPages(vm, sim.RingPages, pages)
			t.Logf("destination memory equals the source's: %v (%v)", got == before, err)
			_ = vm.Destroy()
		}
		// A corruption that goes through produces a wrong VM or a wrong
		// record: never acceptable.
		t.Fatalf("migration survived a %s fault: destination err %v, source err %v", kind, dstErr, out.err)
	}
	t.Logf("source: %v\ndestination: %v", out.err, dstErr)
	if vm != nil {
		t.Errorf("destination returned a VM after failing")
	}
	if dres == nil || !dres.Failed() {
		t.Errorf("destination result does not record the failure")
	}

	// Both errors name a phase; the faulting side fails in the phase the
	// fault hit or, if that phase's last write was what it hit, a later
	// one. A drop is immediate, except at Pause, which does no I/O.
	for _, e := range []struct {
		role schema.Role
		err  error
		rec  *tracetest.SpanRecorder
	}{{schema.RoleSource, out.err, srcRec}, {schema.RoleDestination, dstErr, dstRec}} {
		got, ok := FailedPhase(e.err)
		if !ok {
			t.Errorf("%s error names no phase: %v", e.role, e.err)
			continue
		}
		if e.role == side {
			want := phase
			if phase == schema.PhasePause {
				want = schema.PhaseRamPushPostPause
			}
			if kind == faultDrop && got != want {
				t.Errorf("%s error names %v, want %v: %v", e.role, got, want, e.err)
			} else if phaseIndex(got) < phaseIndex(want) {
				t.Errorf("%s error names %v, before the faulted %v: %v", e.role, got, want, e.err)
			}
		}
		checkFailureSpans(t, e.role, e.rec, got)
	}

	if st := p.srcVM.State(); st != vmm.StateRunning {
		t.Fatalf("source VM is %v after the failure, want running", st)
	}
	if err := p.srcVM.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := vmm.ChecksumPages(p.srcVM, sim.RingPages, pages)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("source memory changed: checksum %x, was %x", after, before)
	}
	cont, err := p.srcVM.GuestContinuity()
	if err != nil || !cont.Monotonic {
		t.Errorf("source guest TSC ring: %+v, %v", cont, err)
	}
}

// checkFailureSpans asserts that role's migration span records a failure
// in phase and that phase's span has status Error.
func checkFailureSpans(t *testing.T, role schema.Role, rec *tracetest.SpanRecorder, phase schema.Phase) {
	t.Helper()
	var root, phaseSpan sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case schema.SpanMigration:
			root = s
		case schema.PhaseSpanName(phase):
			phaseSpan = s
		}
	}
	if root == nil {
		t.Errorf("%s: no %q span", role, schema.SpanMigration)
		return
	}
	attrs := map[string]string{}
	for _, kv := range root.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs[schema.AttrResult] != schema.ResultFailure || attrs[schema.AttrErrorPhase] != phase.String() {
		t.Errorf("%s migration span: %s=%q %s=%q, want %q in %v", role,
			schema.AttrResult, attrs[schema.AttrResult], schema.AttrErrorPhase, attrs[schema.AttrErrorPhase],
			schema.ResultFailure, phase)
	}
	if phaseSpan == nil {
		t.Errorf("%s: no span for the failed phase %v", role, phase)
	} else if phaseSpan.Status().Code != codes.Error {
		t.Errorf("%s: %v span status %v, want Error", role, phase, phaseSpan.Status().Code)
	}
}
