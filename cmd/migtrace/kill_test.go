package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/tracing/schema"
)

// instanceStatus reads a serve process's GET /v1/instance.
func instanceStatus(addr string) (server.InstanceStatus, error) {
	var st server.InstanceStatus
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/v1/instance")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /v1/instance: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// awaitStatus polls addr until ok accepts its status.
func awaitStatus(t *testing.T, addr string, within time.Duration, ok func(server.InstanceStatus) bool) server.InstanceStatus {
	t.Helper()
	var (
		st  server.InstanceStatus
		err error
	)
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if st, err = instanceStatus(addr); err == nil && ok(st) {
			return st
		}
	}
	t.Fatalf("%s: status never as wanted within %v: last %+v %+v, %v", addr, within, st, st.Migration, err)
	return st
}

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
	src, _ := serveProcess(t, "--boot", "--memory", "64MiB", "--dirty-rate", "3MiB",
		"--max-bandwidth", "8MiB", "--io-timeout", "5s", "--name", "src")
	dst, dstCmd := serveProcess(t, "--memory", "64MiB", "--name", "dst")
	time.Sleep(time.Second)

	mig := exec.Command(migtraceBinary(t), "migrate", "--from", src, "--to", dst)
	var migOut bytes.Buffer
	mig.Stdout, mig.Stderr = &migOut, &migOut
	if err := mig.Start(); err != nil {
		t.Fatal(err)
	}
	migDone := make(chan error, 1)
	go func() { migDone <- mig.Wait() }()

	pushing := schema.PhaseRamPushPrePause.String()
	st := awaitStatus(t, dst, 10*time.Second, func(st server.InstanceStatus) bool {
		// Some way into the push, not as it begins.
		return st.Migration != nil && st.Migration.Progress != nil && st.Migration.Progress.Phase == pushing &&
			st.Migration.Progress.Bytes > 1<<20
	})
	if err := dstCmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the destination in %s, round %d, %d bytes moved", st.Migration.Progress.Phase,
		st.Migration.Progress.Round, st.Migration.Progress.Bytes)

	got := awaitStatus(t, src, 10*time.Second, func(st server.InstanceStatus) bool {
		return st.Migration != nil && st.Migration.Result != "running"
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
		for _, want := range []string{"failed in phase " + pushing, "the destination " + dst + " stopped answering",
			"the VM keeps running on " + src} {
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
	dst2, _ := serveProcess(t, "--memory", "64MiB", "--name", "dst2")
	began := time.Now()
	out, errOut, code := run(t, "migrate", "--from", src, "--to", dst2, "-o", "json")
	t.Logf("second migration took %v", time.Since(began).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("second migration: exit %d\n%s\n%s", code, out, errOut)
	}
	final, err := instanceStatus(dst2)
	if err != nil {
		t.Fatal(err)
	}
	if final.State != server.StateRunning || final.Migration == nil || final.Migration.Result != schema.ResultSuccess ||
		final.Migration.Detail == nil || !final.Migration.Detail.Verified() {
		t.Errorf("second destination: %+v %+v", final, final.Migration)
	}
	if st, _ := instanceStatus(src); st.State != server.StateMigrated {
		t.Errorf("source after the second migration: %s, want migrated", st.State)
	}
}
