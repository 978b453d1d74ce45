//go:build linux && amd64

package kvm_test

import (
	"errors"
	"io/fs"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/migtrace/migtrace/migrate/vmm/kvm"
)

// TestMain runs a migration source when TestMigrationBetweenProcesses
// starts this binary as one. Otherwise it fails the run if any goroutine,
// a vCPU's above all, outlives the tests: every VM a test makes must be
// destroyed, and Destroy must stop its vCPU.
func TestMain(m *testing.M) {
	if id := os.Getenv(sourceProcessEnv); id != "" {
		os.Exit(runSourceProcess(id))
	}
	goleak.VerifyTestMain(m)
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
