//go:build linux && amd64

package kvm_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm/kvm"
)

// TestMain runs a migration source when TestMigrationBetweenProcesses
// starts this binary as one. Otherwise it fails the run if a vCPU goroutine outlives the tests: every VM
// a test makes must be destroyed, and Destroy must stop its vCPU.
func TestMain(m *testing.M) {
	if id := os.Getenv(sourceProcessEnv); id != "" {
		os.Exit(runSourceProcess(id))
	}
	code := m.Run()
	if code == 0 {
		if leaked := lingeringVCPUs(time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "vCPU goroutines still running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func lingeringVCPUs(timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked [][]byte
		for _, g := range bytes.Split(buf, []byte("\n\n")) {
			if bytes.Contains(g, []byte("kvm.(*VM).runVCPU")) {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return string(bytes.Join(leaked, []byte("\n\n")))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newBackend returns a kvm Backend, skipping the test only where the
// host has no /dev/kvm; any other failure to start is a test failure.
func newBackend(tb testing.TB, opts ...kvm.Option) *kvm.Backend {
	tb.Helper()
	if _, err := os.Stat(kvm.DevicePath); errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("no %s on this host", kvm.DevicePath)
	}
	b, err := kvm.New(opts...)
	if err != nil {
		tb.Fatalf("kvm.New: %v", err)
	}
	return b
}
