package migrate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/schema"
)

// connSlot remembers a side's migration connection so a test can cut it.
// A drop asked for before the connection exists (the destination's Sync
// begins before it dials) happens as soon as it does.
type connSlot struct {
	mu      sync.Mutex
	nc      net.Conn
	pending bool
}

func (s *connSlot) set(nc net.Conn) net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nc = nc
	if s.pending {
		nc.Close()
	}
	return nc
}

func (s *connSlot) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nc != nil {
		s.nc.Close()
	} else {
		s.pending = true
	}
}

// dropAt returns a Progress hook that cuts slot's connection as phase
// begins.
func dropAt(phase schema.Phase, slot *connSlot) func(Progress) {
	var once sync.Once
	return func(p Progress) {
		if p.Phase == phase {
			once.Do(slot.drop)
		}
	}
}

// A connection dropped as any phase begins, on either side, fails the
// migration on both sides, leaves the source VM running with its memory
// untouched and its dirty log restored, and leaves no VM on the
// destination.
func TestDropAtEveryPhase(t *testing.T) {
	for _, side := range []schema.Role{schema.RoleSource, schema.RoleDestination} {
		for _, phase := range schema.Phases {
			if !phase.Runs(side) {
				continue
			}
			t.Run(side.String()+"/"+phase.String(), func(t *testing.T) {
				t.Parallel()
				testDrop(t, side, phase)
			})
		}
	}
}

func testDrop(t *testing.T, side schema.Role, phase schema.Phase) {
	// An idle guest writes only its TSC ring, so the rest of memory must
	// come out of a failed migration bit for bit as it went in.
	p := newPair(t, Config{}, sim.WithMemory(4<<20), sim.WithDirtyRate(0))
	pages := p.srcVM.Spec().Pages() - sim.RingPages
	before, err := vmm.ChecksumPages(p.srcVM, sim.RingPages, pages)
	if err != nil {
		t.Fatal(err)
	}
	dirtyBefore, err := p.srcVM.DirtyCount()
	if err != nil {
		t.Fatal(err)
	}
	var srcSlot, dstSlot connSlot
	srcCfg := Config{IOTimeout: 5 * time.Second}
	dstCfg := Config{IOTimeout: 5 * time.Second}
	if side == schema.RoleSource {
		srcCfg.Progress = dropAt(phase, &srcSlot)
	} else {
		dstCfg.Progress = dropAt(phase, &dstSlot)
	}
	ctx := context.Background()
	id := NewID()
	p.serve(ctx, id, srcCfg, srcSlot.set)
	dial := p.dialer()
	vm, dres, dstErr := RunDestination(ctx, func(ctx context.Context) (net.Conn, error) {
		nc, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		return dstSlot.set(nc), nil
	}, p.backend, id, dstCfg)
	out := <-p.srcRes

	if dstErr == nil || out.err == nil {
		t.Fatalf("migration survived a drop: destination err %v, source err %v", dstErr, out.err)
	}
	if vm != nil {
		t.Errorf("destination returned a VM after failing")
	}
	// Pause does no I/O: a drop as it begins surfaces in the next phase.
	wantSrc := phase
	if phase == schema.PhasePause {
		wantSrc = schema.PhaseRamPushPostPause
	}
	if got, ok := FailedPhase(out.err); !ok || (side == schema.RoleSource && got != wantSrc) {
		t.Errorf("source error %v names phase %v, want %v", out.err, got, wantSrc)
	}
	if got, ok := FailedPhase(dstErr); !ok || (side == schema.RoleDestination && got != phase) {
		t.Errorf("destination error %v names phase %v, want %v", dstErr, got, phase)
	}
	if dres == nil || !dres.Failed() {
		t.Errorf("destination result does not record the failure")
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
	dirtyAfter, err := p.srcVM.DirtyCount()
	if err != nil {
		t.Fatal(err)
	}
	if dirtyAfter < dirtyBefore {
		t.Errorf("dirty log lost bits: %d dirty pages, had %d", dirtyAfter, dirtyBefore)
	}
	cont, err := p.srcVM.GuestContinuity()
	if err != nil || !cont.Monotonic {
		t.Errorf("source guest TSC ring: %+v, %v", cont, err)
	}
}

// rawPeer serves a booted 4 MiB source with cfg and dials it, so that the
// test plays the destination by hand on the returned connection.
func rawPeer(t *testing.T, cfg Config) (*pair, net.Conn) {
	t.Helper()
	p := newPair(t, cfg, sim.WithMemory(4<<20))
	ctx := context.Background()
	p.serve(ctx, NewID(), cfg, nil)
	nc, err := p.dialer()(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return p, nc
}

func TestVersionMismatchRefused(t *testing.T) {
	ctx := context.Background()
	p, nc := rawPeer(t, Config{})
	c := wire.NewConn(nc)
	_, err := wire.HandshakeClient(ctx, c, []uint32{7, 9})
	// The source refuses with an Error frame naming both version lists.
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(wire.SupportedVersions)) || !strings.Contains(err.Error(), "[7 9]") {
		t.Fatalf("handshake with versions 7, 9: %v", err)
	}
	out := <-p.srcRes
	if !errors.Is(out.err, wire.ErrNoCommonVersion) {
		t.Errorf("source error %v", out.err)
	}
	if p.srcVM.State() != vmm.StateRunning {
		t.Errorf("source VM %v", p.srcVM.State())
	}
}

func TestOversizedFrameRefused(t *testing.T) {
	p, nc := rawPeer(t, Config{})
	// A Hello frame header claiming a 1 GiB payload (its checksum is
	// never reached: the length is refused first).
	hdr := make([]byte, wire.HeaderSize)
	hdr[0], hdr[4] = byte(wire.TypeHello), 0x40
	if _, err := nc.Write(hdr); err != nil {
		t.Fatal(err)
	}
	out := <-p.srcRes
	if !errors.Is(out.err, wire.ErrFrameTooLarge) {
		t.Errorf("source error %v, want frame too large", out.err)
	}
	if p.srcVM.State() != vmm.StateRunning {
		t.Errorf("source VM %v", p.srcVM.State())
	}
}

// A destination that stops answering is cut off by the I/O deadline and
// the source resumes.
func TestStalledPeerTimesOut(t *testing.T) {
	ctx := context.Background()
	p, nc := rawPeer(t, Config{IOTimeout: 200 * time.Millisecond})
	c := wire.NewConn(nc)
	if _, err := wire.HandshakeClient(ctx, c, wire.SupportedVersions); err != nil {
		t.Fatal(err)
	}
	// Receive Sync, then go silent instead of probing the clock.
	if _, err := wire.Expect[*wire.Sync](ctx, c); err != nil {
		t.Fatal(err)
	}
	out := <-p.srcRes
	if !errors.Is(out.err, wire.ErrTimeout) {
		t.Errorf("source error %v, want a timeout", out.err)
	}
	if ph, _ := FailedPhase(out.err); ph != schema.PhaseSync {
		t.Errorf("failed phase %v, want Sync", ph)
	}
	if p.srcVM.State() != vmm.StateRunning {
		t.Errorf("source VM %v", p.srcVM.State())
	}
}
