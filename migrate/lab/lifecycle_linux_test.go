package lab_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/lab"
)

// labState is what of a slot's lab the machine shows.
type labState struct {
	namespaces, veths []string
	route             bool
}

func slotState(t *testing.T, slot int) labState {
	t.Helper()
	var st labState
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], fmt.Sprintf("mtlab-%d-", slot)) {
			st.namespaces = append(st.namespaces, f[0])
		}
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifs {
		if strings.HasPrefix(ifc.Name, fmt.Sprintf("mtl%dh", slot)) {
			st.veths = append(st.veths, ifc.Name)
		}
	}
	out, err = exec.Command("ip", "route", "show", "type", "unreachable").Output()
	if err != nil {
		t.Fatal(err)
	}
	st.route = strings.Contains(string(out), fmt.Sprintf("10.199.%d.0/24", slot))
	return st
}

// listening reports whether a socket in the root namespace listens on
// TCP port. thread-self, because /proc/self/net follows the main thread,
// which may have run (and stayed in) a host's namespace.
func listening(t *testing.T, port int) bool {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open("/proc/thread-self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// local_address is field 1, st is field 3 (0A: LISTEN).
		if len(fields) > 3 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
			return true
		}
	}
	return false
}

// Close removes every namespace, veth, route, process and proxy the lab
// made, frees its slot, and leaves every method returning ErrClosed.
func TestCloseRemovesEverything(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip(err)
	}
	ctx := testCtx(t, 60*time.Second)
	l, err := lab.New(ctx, lab.Config{Binary: migtraceBin, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) }) // if the test fails early
	opts := lab.HostOptions{}
	if lab.TimeNamespaces() == nil {
		opts.MonotonicOffset = 3 * time.Second
	}
	a := addHost(t, ctx, l, "a", opts)
	b := addHost(t, ctx, l, "b", lab.HostOptions{})
	if _, err := l.Link(ctx, a, b, lab.LinkOptions{Rate: 10_000_000}); err != nil {
		t.Fatal(err)
	}
	p, err := l.Proxy(ctx, b, a, lab.ServePort, lab.ProxyOptions{Latency: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*lab.Host{a, b} {
		if err := h.Serve(ctx, "--memory", "4MiB"); err != nil {
			t.Fatal(err)
		}
	}
	slot := l.Slot()
	before := slotState(t, slot)
	_, portStr, _ := net.SplitHostPort(p.Addr())
	port, _ := strconv.Atoi(portStr)
	pids := []int{a.Pid(), b.Pid()}
	t.Logf("before Close: %+v, serve pids %v, proxy listening on %s: %v", before, pids, p.Addr(), listening(t, port))
	if len(before.namespaces) != 2 || len(before.veths) != 2 || !before.route || !listening(t, port) {
		t.Fatalf("the lab is not all there before Close: %+v", before)
	}

	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if after := slotState(t, slot); len(after.namespaces)+len(after.veths) != 0 || after.route {
		t.Errorf("after Close the machine still shows %+v", after)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("serve pid %d after Close: kill -0 says %v, want ESRCH", pid, err)
		}
	}
	if listening(t, port) {
		t.Errorf("the proxy still listens on port %d", port)
	}
	if _, err := l.AddHost(ctx, "c", lab.HostOptions{}); !errors.Is(err, lab.ErrClosed) {
		t.Errorf("AddHost after Close: %v, want ErrClosed", err)
	}
	if _, err := a.Status(ctx); err == nil {
		t.Error("Status after Close succeeded")
	}
	if err := a.Serve(ctx); !errors.Is(err, lab.ErrClosed) {
		t.Errorf("Serve after Close: %v, want ErrClosed", err)
	}

	// The slot is free again.
	l2, err := lab.New(ctx, lab.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close(ctx)
	if l2.Slot() != slot {
		t.Errorf("next lab got slot %d, want the freed %d", l2.Slot(), slot)
	}
}

// What a crashed run left (a namespace with a process in it, a root-side
// veth, the slot's route) goes with the next New, as long as no live lab
// holds that slot; a live lab's hosts are left alone.
func TestNewSweepsCrashedLeftovers(t *testing.T) {
	if err := lab.Available(); err != nil {
		t.Skip(err)
	}
	ctx := testCtx(t, 60*time.Second)
	live := newLab(t)
	h := addHost(t, ctx, live, "live", lab.HostOptions{})
	if err := h.Serve(ctx, "--memory", "4MiB"); err != nil {
		t.Fatal(err)
	}

	// Slot 250's lock is free unless 250 labs run at once.
	const slot = 250
	ns := fmt.Sprintf("mtlab-%d-ghost", slot)
	veth := fmt.Sprintf("mtl%dh0", slot)
	route := fmt.Sprintf("10.199.%d.0/24", slot)
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", veth, "type", "veth", "peer", "name", "mgmt0", "netns", ns},
		{"route", "add", "unreachable", route},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() { // only if the sweep failed
		_ = exec.Command("ip", "netns", "del", ns).Run()
		_ = exec.Command("ip", "link", "del", veth).Run()
		_ = exec.Command("ip", "route", "del", "unreachable", route).Run()
	})
	orphan := exec.Command("ip", "netns", "exec", ns, "sleep", "60")
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- orphan.Wait() }()
	t.Cleanup(func() { _ = orphan.Process.Kill() })
	if st := slotState(t, slot); len(st.namespaces) != 1 || len(st.veths) != 1 || !st.route {
		t.Fatalf("leftovers not in place: %+v", st)
	}

	l, err := lab.New(ctx, lab.Config{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	if st := slotState(t, slot); len(st.namespaces)+len(st.veths) != 0 || st.route {
		t.Errorf("after New, slot %d still shows %+v", slot, st)
	}
	select {
	case err := <-waited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("the process in the stale namespace ended with %v, want killed", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the process in the stale namespace still runs")
	}
	if st, err := h.Status(ctx); err != nil || st.Name != "live" {
		t.Errorf("the live lab's host after another New: %+v, %v", st, err)
	}
	if st := slotState(t, live.Slot()); len(st.namespaces) != 1 {
		t.Errorf("the live lab's slot %d after another New: %+v", live.Slot(), st)
	}
}
