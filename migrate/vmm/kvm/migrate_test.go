//go:build linux && amd64

package kvm_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/kvm"
	"github.com/migtrace/migtrace/tracing/model"
)

// progressBudget bounds how long a test waits for a starved guest (a
// loaded CI machine) to make the progress it asserts.
const progressBudget = 10 * time.Second

// waitExits waits until vm has taken at least n exit samples.
func waitExits(t *testing.T, vm *kvm.VM, n int) {
	t.Helper()
	deadline := time.Now().Add(progressBudget)
	for vm.ExitSamples() < n {
		if err := vm.Fault(); err != nil {
			t.Fatalf("guest fault: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d exit samples after %v, want %d", vm.ExitSamples(), progressBudget, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type sourceOutcome struct {
	res *model.Side
	err error
}

// migrateOverTCP runs one migration of src, a booted VM, to a VM of
// backend b over a loopback TCP connection, with wrap (if set) applied to
// the source's end of it.
func migrateOverTCP(t *testing.T, b *kvm.Backend, src *kvm.VM, wrap func(net.Conn) net.Conn) (vmm.VM, *model.Side, sourceOutcome, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := migrate.Config{IOTimeout: 10 * time.Second}
	ctx := t.Context()
	id := migrate.NewID()
	srcDone := make(chan sourceOutcome, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			srcDone <- sourceOutcome{err: err}
			return
		}
		if wrap != nil {
			nc = wrap(nc)
		}
		res, err := migrate.RunSource(ctx, nc, src, id, cfg)
		srcDone <- sourceOutcome{res, err}
	}()
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", ln.Addr().String())
	}
	dst, dres, err := migrate.RunDestination(ctx, dial, b, id, cfg)
	return dst, dres, <-srcDone, err
}

// TestMigration moves a running guest between two kvm VMs with package
// migrate and measures the guest's TSC continuity from its exit samples.
// The median error is asserted within 10 µs once each side has
// kvm.MinContinuitySamples samples (the test waits for them): the
// feasibility runs measured 0.1 to 2.3 µs with 50 samples a side and up
// to 10 µs with 5.
func TestMigration(t *testing.T) {
	b := newBackend(t, kvm.WithMemory(16<<20), kvm.WithDirtyRate(8<<20))
	src, err := b.NewVM(b.DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Destroy() })
	if err := src.Boot(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitExits(t, src, kvm.ContinuityWindow)

	dst, dres, out, err := migrateOverTCP(t, b, src, nil)
	if err != nil {
		t.Fatalf("destination: %v (source: %v)", err, out.err)
	}
	t.Cleanup(func() { _ = dst.Destroy() })
	if out.err != nil {
		t.Fatalf("source: %v", out.err)
	}
	if !dres.Verified() || !dres.Continuity.TSCMonotonic {
		t.Errorf("destination not verified: continuity %+v", dres.Continuity)
	}
	if src.State() != vmm.StateDestroyed || dst.State() != vmm.StateRunning {
		t.Errorf("after migrating: source %s, destination %s", src.State(), dst.State())
	}
	vm := dst.(*kvm.VM)
	ctx, cancel := context.WithTimeout(t.Context(), progressBudget)
	defer cancel()
	m, err := kvm.AwaitContinuity(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(m)
	t.Logf("spread %.2f µs; wall %d ns, guest %d ticks between the last source and first destination sample; blackout %v; stages %+v",
		m.SpreadNs/1e3, m.WallNs, m.GuestTicks, dres.Blackout, dres.Stages)
	if !m.Sufficient() {
		t.Fatalf("only %d+%d samples, want %d a side", m.Before, m.After, kvm.MinContinuitySamples)
	}
	if m.ErrorNs > 10_000 || m.ErrorNs < -10_000 {
		t.Errorf("median continuity error %.2f µs, want within 10 µs", m.ErrorNs/1e3)
	}
	if m.TSCOffsetHonoured != b.TSCOffsetHonoured() && b.TSCOffsetHonoured() {
		t.Errorf("the VM says offsets honoured=%v, the backend's probe %v", m.TSCOffsetHonoured, b.TSCOffsetHonoured())
	}
	if err := vm.Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	c, err := vm.GuestContinuity()
	if err != nil {
		t.Fatal(err)
	}
	if !c.Monotonic || c.Last <= dres.Continuity.TSCLast {
		t.Errorf("guest TSC ring after the migration: %+v, before resuming %+v", c, dres.Continuity)
	}
	if err := vm.Fault(); err != nil {
		t.Error(err)
	}
}

// droppingConn fails every write after budget bytes.
type droppingConn struct {
	net.Conn
	budget int
}

func (c *droppingConn) Write(b []byte) (int, error) {
	if len(b) > c.budget {
		n, _ := c.Conn.Write(b[:c.budget])
		c.budget = 0
		c.Conn.Close()
		return n, errors.New("injected drop")
	}
	c.budget -= len(b)
	return c.Conn.Write(b)
}

// TestDropLeavesSourceRunning cuts the stream at several points: the
// source guest must keep running, its TSC ring advancing.
func TestDropLeavesSourceRunning(t *testing.T) {
	b := newBackend(t, kvm.WithMemory(8<<20), kvm.WithDirtyRate(4<<20))
	for _, budget := range []int{100, 4 << 10, 32 << 10} {
		src, err := b.NewVM(b.DefaultSpec())
		if err != nil {
			t.Fatal(err)
		}
		if err := src.Boot(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, _, out, err := migrateOverTCP(t, b, src, func(nc net.Conn) net.Conn { return &droppingConn{Conn: nc, budget: budget} })
		if err == nil || out.err == nil {
			t.Fatalf("budget %d: migration through a dropped stream: destination %v, source %v", budget, err, out.err)
		}
		if src.State() != vmm.StateRunning {
			t.Fatalf("budget %d: source %s after the failure, want running", budget, src.State())
		}
		first, err := src.GuestContinuity()
		if err != nil {
			t.Fatal(err)
		}
		exits := src.ExitSamples()
		waitExits(t, src, exits+5)
		later, err := src.GuestContinuity()
		if err != nil {
			t.Fatal(err)
		}
		if later.Last <= first.Last || !later.Monotonic {
			t.Errorf("budget %d: source ring %+v then %+v: not advancing monotonically", budget, first, later)
		}
		if err := src.Destroy(); err != nil {
			t.Fatal(err)
		}
	}
}
