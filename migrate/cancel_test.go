package migrate

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// askControl answers AskPeerCancelled from the peer's Control, as the
// peer's server would from its record.
func askControl(c *Control) func(context.Context, string, ID) (string, error) {
	return func(context.Context, string, ID) (string, error) {
		by, _ := c.CancelledBy()
		return by, nil
	}
}

// A cancel as any phase before the handoff begins, on either side, ends
// the migration on both sides as a cancellation in that phase (the peer
// learns it from its peer's record, its stream having broken), leaves the
// source's guest running with its memory and dirty log intact, and
// leaves no VM on the destination.
func TestCancelInEveryPhase(t *testing.T) {
	for _, side := range []schema.Role{schema.RoleSource, schema.RoleDestination} {
		for _, phase := range schema.Phases {
			if !phase.Runs(side) {
				continue
			}
			t.Run(side.String()+"/"+phase.String(), func(t *testing.T) {
				t.Parallel()
				testCancel(t, side, phase)
			})
		}
	}
}

func testCancel(t *testing.T, side schema.Role, phase schema.Phase) {
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
	srcCtl, dstCtl := NewControl(), NewControl()
	srcCfg := Config{IOTimeout: 5 * time.Second, Control: srcCtl, PeerAPI: "destination", AskPeerCancelled: askControl(dstCtl)}
	dstCfg := Config{IOTimeout: 5 * time.Second, Control: dstCtl, PeerAPI: "source", AskPeerCancelled: askControl(srcCtl)}
	ctl, cfg := srcCtl, &srcCfg
	if side == schema.RoleDestination {
		ctl, cfg = dstCtl, &dstCfg
	}
	const by = "test operator"
	var once sync.Once
	cancelErr := make(chan error, 1)
	cfg.Progress = func(pr Progress) {
		if pr.Phase == phase {
			once.Do(func() { cancelErr <- ctl.Cancel(by) })
		}
	}
	ctx := context.Background()
	id := NewID()
	p.serve(ctx, id, srcCfg, nil)
	vm, dres, dstErr := RunDestination(ctx, p.dialer(), p.backend, id, dstCfg)
	// A destination cancelled as its Sync begins never dials: the source
	// then has no migration to end.
	_ = p.ln.Close()
	out := <-p.srcRes
	if err := <-cancelErr; err != nil {
		t.Fatalf("cancel in %s refused: %v", phase, err)
	}
	if out.res == nil {
		if side != schema.RoleDestination || phase != schema.PhaseSync {
			t.Fatalf("the source never ran: %v", out.err)
		}
		out.res, out.err = &model.Side{Result: schema.ResultCancelled, CancelledBy: by}, &CancelledError{By: by}
	}

	if vm != nil {
		t.Errorf("destination returned a VM after a cancel")
	}
	for _, s := range []struct {
		role schema.Role
		res  *model.Side
		err  error
	}{{schema.RoleSource, out.res, out.err}, {schema.RoleDestination, dres, dstErr}} {
		if !errors.Is(s.err, ErrCancelled) {
			t.Errorf("%s error %v, want a cancellation", s.role, s.err)
		}
		if s.res == nil || s.res.Result != schema.ResultCancelled || s.res.CancelledBy != by {
			t.Errorf("%s record: %+v, want result cancelled by %q", s.role, s.res, by)
			continue
		}
		if s.role == side && s.res.ErrorPhase != phase.String() {
			t.Errorf("%s cancelled in %s, want %s", s.role, s.res.ErrorPhase, phase)
		}
	}
	if srcCtl.handoff == nil {
		// The source never started: nothing of it to check.
	} else if st, _ := srcCtl.handoff.State(); st != HandoffAborted {
		t.Errorf("source handoff state %q, want aborted", st)
	}
	if st := p.srcVM.State(); st != vmm.StateRunning {
		t.Fatalf("source VM is %v after the cancel, want running", st)
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
	if dirtyAfter, err := p.srcVM.DirtyCount(); err != nil || dirtyAfter < dirtyBefore {
		t.Errorf("dirty log lost bits: %d dirty pages (%v), had %d", dirtyAfter, err, dirtyBefore)
	}
}

// frameHook runs fn on the first frame of type typ a side writes, before
// writing it.
type frameHook struct {
	net.Conn
	typ  wire.Type
	once sync.Once
	fn   func()
}

func (h *frameHook) Write(b []byte) (int, error) {
	if len(b) >= wire.HeaderSize && wire.Type(b[0]) == h.typ {
		h.once.Do(h.fn)
	}
	return h.Conn.Write(b)
}

// At the handoff a cancel is refused on either side, saying why, and the
// migration completes: the guest runs on the destination, once.
func TestCancelRefusedAtTheHandoff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		side  schema.Role
		frame wire.Type // the cancel comes as this side writes it
		state HandoffState
	}{
		// The source writes Finish once it is undecided.
		{"source sending Finish", schema.RoleSource, wire.TypeFinish, HandoffUndecided},
		// The destination's last Okay is the one that says it is ready;
		// its earlier Okays come before Finish, where a cancel is allowed.
		{"destination ready", schema.RoleDestination, wire.TypeOkay, HandoffReady},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, Config{}, sim.WithMemory(4<<20))
			srcCtl, dstCtl := NewControl(), NewControl()
			srcCfg := Config{IOTimeout: 5 * time.Second, Control: srcCtl}
			dstCfg := Config{IOTimeout: 5 * time.Second, Control: dstCtl}
			ctl := srcCtl
			if tc.side == schema.RoleDestination {
				ctl = dstCtl
			}
			var cancelErr error
			var inFinish sync.Once
			finishing := make(chan struct{})
			progress := func(pr Progress) {
				if pr.Phase == schema.PhaseFinish {
					inFinish.Do(func() { close(finishing) })
				}
			}
			hook := func(nc net.Conn) net.Conn {
				return &frameHook{Conn: nc, typ: tc.frame, fn: func() { cancelErr = ctl.Cancel("late operator") }}
			}
			ctx := context.Background()
			id := NewID()
			var srcWrap func(net.Conn) net.Conn
			dial := p.dialer()
			if tc.side == schema.RoleSource {
				srcWrap = hook
			} else {
				dstCfg.Progress = progress
				inner := dial
				dial = func(ctx context.Context) (net.Conn, error) {
					nc, err := inner(ctx)
					if err != nil {
						return nil, err
					}
					// Only the Okay sent in Finish is the ready one.
					return &gatedHook{Conn: nc, open: finishing, hook: hook(nc).(*frameHook)}, nil
				}
			}
			p.serve(ctx, id, srcCfg, srcWrap)
			vm, _, dstErr := RunDestination(ctx, dial, p.backend, id, dstCfg)
			out := <-p.srcRes
			var late *TooLateError
			if !errors.As(cancelErr, &late) || late.State != tc.state || !errors.Is(cancelErr, ErrTooLate) {
				t.Fatalf("cancel at the handoff: %v, want too late at %q", cancelErr, tc.state)
			}
			t.Logf("refused: %v", cancelErr)
			if dstErr != nil || out.err != nil || vm == nil {
				t.Fatalf("migration after a refused cancel: destination %v, source %v", dstErr, out.err)
			}
			t.Cleanup(func() { _ = vm.Destroy() })
			if vm.State() != vmm.StateRunning || p.srcVM.State() != vmm.StateDestroyed {
				t.Errorf("guest: destination %v, source %v; want running once, on the destination", vm.State(), p.srcVM.State())
			}
		})
	}
}

// gatedHook passes frames to hook only once open is closed.
type gatedHook struct {
	net.Conn
	open <-chan struct{}
	hook *frameHook
}

func (g *gatedHook) Write(b []byte) (int, error) {
	select {
	case <-g.open:
		return g.hook.Write(b)
	default:
		return g.Conn.Write(b)
	}
}
