package servertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
)

func TestListenAndDialAddr(t *testing.T) {
	for _, tc := range []struct {
		args         []string
		listen, dial string
	}{
		{[]string{"--boot", "--listen", "127.0.0.1:7001"}, "127.0.0.1:7001", "127.0.0.1:7001"},
		{[]string{"--listen=0.0.0.0:7002", "--insecure"}, "0.0.0.0:7002", "127.0.0.1:7002"},
		{[]string{"--listen", "[::]:7003"}, "[::]:7003", "127.0.0.1:7003"},
		{[]string{"--listen", ":7004"}, ":7004", "127.0.0.1:7004"},
	} {
		listen, ok := listenArg(tc.args)
		if !ok || listen != tc.listen {
			t.Errorf("listenArg(%q) = %q, %v; want %q", tc.args, listen, ok, tc.listen)
			continue
		}
		if dial, err := dialAddr(listen); err != nil || dial != tc.dial {
			t.Errorf("dialAddr(%q) = %q, %v; want %q", listen, dial, err, tc.dial)
		}
	}
	if _, ok := listenArg([]string{"--boot", "--listen"}); ok {
		t.Error("a --listen without a value counted as given")
	}
}

func TestFreeAddrsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range FreeAddrs(t, 16) {
		if seen[a] || !strings.HasPrefix(a, "127.0.0.1:") {
			t.Errorf("address %s repeated or not loopback", a)
		}
		seen[a] = true
	}
}

// The helpers against a real serve: Start waits for the named server,
// Stop ends it cleanly, a killed one fails nothing.
func TestServeLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds migtrace and starts processes")
	}
	bin := Binary(t)
	p := Start(t, bin, Options{Name: "lifecycle", Args: []string{"--boot", "--memory", "8MiB"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := WaitState(ctx, p.Client(), server.StateRunning)
	if err != nil || st.Name != "lifecycle" {
		t.Fatalf("status %+v, %v; want running, named lifecycle", st, err)
	}
	if p.PID() <= 0 || !strings.Contains(p.Stderr(), "serving") {
		t.Errorf("pid %d, stderr %q", p.PID(), p.Stderr())
	}
	if err := p.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}

	k := Start(t, bin, Options{})
	if err := k.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := k.Stop(ctx); err != nil {
		t.Errorf("stop after kill: %v", err)
	}
	if r := Run(t, bin, "status", "--server", k.Addr()); r.Code == 0 {
		t.Errorf("status of a killed server succeeded:\n%s", r)
	}
}
