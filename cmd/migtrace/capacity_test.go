package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/tracing/schema"
)

// A VM the host cannot hold, or a limit that makes no sense, is a usage
// error naming the flag. Before the check, --memory 10TiB crashed serve
// with "fatal error: runtime: out of memory" and a goroutine dump.
func TestServeRefusesVMBeyondHost(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"10 TiB guest", []string{"--boot", "--memory", "10TiB"}, []string{"--memory 10 TiB is more than this host can hold", "--max-guest-memory overrides"}},
		{"above --max-guest-memory", []string{"--boot", "--memory", "2GiB", "--max-guest-memory", "1GiB"}, []string{"--memory 2 GiB", "--max-guest-memory is 1 GiB"}},
		{"a limit above the host", []string{"--memory", "10TiB", "--max-guest-memory", "20TiB"}, []string{"--backend sim", "memory 10 TiB does not fit"}},
		{"zero --max-guest-memory", []string{"--max-guest-memory", "0"}, []string{"--max-guest-memory 0"}},
		{"above --max-vcpus", []string{"--boot", "--vcpus", "3", "--max-vcpus", "2"}, []string{"--vcpus 3 is more than --max-vcpus 2"}},
		{"zero --max-vcpus", []string{"--max-vcpus", "0"}, []string{"--max-vcpus 0"}},
		{"negative --vcpus", []string{"--vcpus", "-1"}, []string{"--vcpus -1: need at least 1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, append([]string{"serve", "--listen", "127.0.0.1:0"}, tc.args...)...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d: %s", code, exitUsage, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
		})
	}
}

// serveUnder runs `migtrace serve` with its address space limited to
// asKiB (ulimit -v) until the test ends, and waits until its API answers.
func serveUnder(t *testing.T, asKiB int, args ...string) (addr string, p *servertest.Proc) {
	t.Helper()
	p = servertest.Start(t, servertest.Binary(t), servertest.Options{Args: args,
		Wrap: []string{"sh", "-c", "ulimit -v " + strconv.Itoa(asKiB) + ` && exec "$0" "$@"`}})
	return p.Addr(), p
}

// An 8 GiB guest migrating to a destination with 4 GiB of address space
// is refused in Sync: the destination stays up and can take a VM that
// fits, and the guest keeps running on its source. Before the capacity
// check the destination died ("fatal error: runtime: out of memory").
func TestMigrateToDestinationTooSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	// The source's guest is allocated lazily, but the sim backend still
	// refuses one the host could not map.
	if avail, how := vmm.HostMemory(); avail < 9<<30 {
		t.Skipf("an 8 GiB source guest needs 9 GiB free here; %s has %s", how, vmm.FormatBytes(avail))
	}
	src, _ := serveProcess(t, "--boot", "--memory", "8GiB", "--max-guest-memory", "8GiB", "--dirty-rate", "1MiB", "--name", "src")
	dst, dstLogs := serveUnder(t, 4<<20, "--name", "dst")

	before, err := instanceStatus(src)
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, "migrate", "--from", src, "--to", dst)
	if code != exitFailure {
		t.Errorf("migrate exit %d, want %d: %s", code, exitFailure, errOut)
	}
	for _, w := range []string{"phase Sync", "memory 8 GiB is more than", "the VM keeps running on " + src} {
		if !strings.Contains(errOut, w) {
			t.Errorf("migrate's message does not say %q:\n%s", w, errOut)
		}
	}
	st, err := instanceStatus(dst)
	if err != nil {
		t.Fatalf("the destination no longer answers: %v\n%s", err, dstLogs)
	}
	if st.State != server.StateFailed || st.Migration == nil || st.Migration.ErrorPhase != schema.PhaseSync.String() {
		t.Errorf("destination: %s, %+v; want failed in Sync", st.State, st.Migration)
	}
	after, err := instanceStatus(src)
	if err != nil || after.State != server.StateRunning || after.GuestTSC <= before.GuestTSC {
		t.Errorf("source after the refusal: %s, guest TSC %d -> %d (%v); want running and advancing",
			after.State, before.GuestTSC, after.GuestTSC, err)
	}

	// A guest that fits moves in.
	small, _ := serveProcess(t, "--boot", "--memory", "32MiB", "--name", "small")
	if out, errOut, code := run(t, "migrate", "--from", small, "--to", dst); code != 0 {
		t.Fatalf("a 32 MiB guest to the same destination: exit %d\n%s\n%s\n%s", code, out, errOut, dstLogs)
	}
}
