//go:build linux && amd64

package kvm_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/kvm"
)

// sourceProcessEnv, when set to a migration ID, makes the test binary a
// migration source instead of running tests (see TestMain).
const sourceProcessEnv = "MIGTRACE_KVM_SOURCE_ID"

// runSourceProcess boots a guest, lets it run, prints the address it
// listens on and serves one migration of the guest. It returns the exit
// code.
func runSourceProcess(idText string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "source process:", err)
		return 1
	}
	id, err := migrate.ParseID(idText)
	if err != nil {
		return fail(err)
	}
	b, err := kvm.New(kvm.WithMemory(16<<20), kvm.WithDirtyRate(8<<20))
	if err != nil {
		return fail(err)
	}
	vm, err := b.NewVM(b.DefaultSpec())
	if err != nil {
		return fail(err)
	}
	defer vm.Destroy()
	ctx := context.Background()
	if err := vm.Boot(ctx); err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	defer ln.Close()
	for vm.ExitSamples() < kvm.ContinuityWindow {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Println("listening", ln.Addr())
	nc, err := ln.Accept()
	if err != nil {
		return fail(err)
	}
	if _, err := migrate.RunSource(ctx, nc, vm, id, migrate.Config{IOTimeout: 10 * time.Second}); err != nil {
		return fail(err)
	}
	return 0
}

// TestMigrationBetweenProcesses migrates a guest out of a second process
// (this test binary re-run as a source) into this one, as two instance
// servers do: the source's exit samples arrive in the vcpu device state
// and kvmclock is rebuilt from KVM_CLOCK_REALTIME.
func TestMigrationBetweenProcesses(t *testing.T) {
	b := newBackend(t, kvm.WithMemory(16<<20), kvm.WithDirtyRate(8<<20))
	id := migrate.NewID()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sourceProcessEnv+"="+id.String())
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the source's address: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("source said %q", line)
	}
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	dst, dres, err := migrate.RunDestination(t.Context(), dial, b, id, migrate.Config{IOTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("destination: %v", err)
	}
	t.Cleanup(func() { _ = dst.Destroy() })
	if err := cmd.Wait(); err != nil {
		t.Errorf("source process: %v", err)
	}
	if !dres.Verified() || dst.State() != vmm.StateRunning {
		t.Fatalf("destination verified %v, state %s", dres.Verified(), dst.State())
	}
	vm := dst.(*kvm.VM)
	waitExits(t, vm, kvm.ContinuityWindow)
	m, err := vm.MeasureContinuity()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%v; spread %.2f µs, round trip %.1f µs, blackout %v", m, m.SpreadNs/1e3, m.RoundTripNs/1e3, dres.Blackout)
	if !m.Sufficient() {
		t.Fatalf("only %d+%d samples, want %d a side", m.Before, m.After, kvm.MinContinuitySamples)
	}
	if m.ErrorNs > 10_000 || m.ErrorNs < -10_000 {
		t.Errorf("median continuity error %.2f µs, want within 10 µs", m.ErrorNs/1e3)
	}
	if err := vm.Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c, err := vm.GuestContinuity(); err != nil || !c.Monotonic || c.Last <= dres.Continuity.TSCLast {
		t.Errorf("guest TSC ring after the migration: %+v (%v), before resuming %+v", c, err, dres.Continuity)
	}
}
