package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/tracing/schema"
)

// A destination process killed outright in the middle of the RAM push
// leaves the source running its VM, with the failure and its phase on
// record, and the VM can still move to another destination.
func TestKillDestinationMidRAMPush(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	// The guest dirties memory for a second first, so that the capped push
	// of its non-zero pages takes a while; the dirty rate is well below the
	// cap, so the second migration converges quickly.
	bin := servertest.Binary(t)
	src := servertest.Start(t, bin, servertest.Options{Name: "src", Args: []string{"--boot", "--memory", "64MiB",
		"--dirty-rate", "3MiB", "--max-bandwidth", "8MiB", "--io-timeout", "5s"}})
	dst := servertest.Start(t, bin, servertest.Options{Name: "dst", Args: []string{"--memory", "64MiB"}})
	time.Sleep(time.Second)

	// Started, not run: the test kills the destination while it runs.
	mig := exec.Command(bin, "migrate", "--from", src.Addr(), "--to", dst.Addr())
	var migOut bytes.Buffer
	mig.Stdout, mig.Stderr = &migOut, &migOut
	if err := mig.Start(); err != nil {
		t.Fatal(err)
	}
	migDone := make(chan error, 1)
	go func() { migDone <- mig.Wait() }()

	pushing := schema.PhaseRamPushPrePause.String()
	st := dst.Await(t, 10*time.Second, func(st server.InstanceStatus) bool {
		// Some way into the push, not as it begins.
		return st.Migration != nil && st.Migration.Progress != nil && st.Migration.Progress.Phase == pushing &&
			st.Migration.Progress.Bytes > 1<<20
	})
	if err := dst.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the destination in %s, round %d, %d bytes moved", st.Migration.Progress.Phase,
		st.Migration.Progress.Round, st.Migration.Progress.Bytes)

	got := src.Await(t, 10*time.Second, func(st server.InstanceStatus) bool {
		return st.Migration != nil && st.Migration.Result != server.ResultRunning
	})
	if got.State != server.StateRunning {
		t.Errorf("source state %s after losing its destination, want running", got.State)
	}
	if got.Migration.Result != schema.ResultFailure || got.Migration.ErrorPhase != pushing {
		t.Errorf("source migration: result %q, failed phase %q (%s); want failure in %s",
			got.Migration.Result, got.Migration.ErrorPhase, got.Migration.Error, pushing)
	}
	waited := time.Now()
	select {
	case err := <-migDone:
		t.Logf("migrate exited %v after the kill: %v", time.Since(waited).Round(time.Millisecond), err)
		if err == nil {
			t.Errorf("migrate exited 0 after its destination was killed:\n%s", migOut.String())
		}
		// It names the phase, and says where the guest is only after the
		// source confirmed it runs there.
		for _, want := range []string{"failed in phase " + pushing, "the destination " + dst.Addr() + " stopped answering",
			"the VM keeps running on " + src.Addr()} {
			if !strings.Contains(migOut.String(), want) {
				t.Errorf("migrate's message does not say %q:\n%s", want, migOut.String())
			}
		}
	case <-time.After(30 * time.Second):
		_ = mig.Process.Kill()
		t.Errorf("migrate did not exit after its destination was killed:\n%s", migOut.String())
	}

	// The VM is intact: a fresh destination takes it, and the destination
	// verifies guest memory, device state and the TSC ring at the handoff.
	dst2 := servertest.Start(t, bin, servertest.Options{Name: "dst2", Args: []string{"--memory", "64MiB"}})
	began := time.Now()
	out, errOut, code := run(t, "migrate", "--from", src.Addr(), "--to", dst2.Addr(), "-o", "json")
	t.Logf("second migration took %v", time.Since(began).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("second migration: exit %d\n%s\n%s", code, out, errOut)
	}
	final := dst2.Status(t)
	if final.State != server.StateRunning || final.Migration == nil || final.Migration.Result != schema.ResultSuccess ||
		final.Migration.Detail == nil || !final.Migration.Detail.Verified() {
		t.Errorf("second destination: %+v %+v", final, final.Migration)
	}
	if st := src.Status(t); st.State != server.StateMigrated {
		t.Errorf("source after the second migration: %s, want migrated", st.State)
	}
}
