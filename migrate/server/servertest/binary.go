package servertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// EnvBinary names a prebuilt migtrace binary for Binary to return instead
// of building one (make test builds bin/migtrace once for every package).
const EnvBinary = "MIGTRACE_BINARY"

var built struct {
	once sync.Once
	dir  string // the temporary directory holding the build, if any
	path string
	err  error
}

// Binary returns the path of a migtrace binary: $MIGTRACE_BINARY if set,
// else one built from this module's ./cmd/migtrace, once per test process
// (parallel tests wait for the one build). Call RemoveBinary from TestMain
// to delete the build.
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(EnvBinary); p != "" {
		abs, err := filepath.Abs(p)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			tb.Fatalf("%s=%s: %v", EnvBinary, p, err)
		}
		return abs
	}
	built.once.Do(func() { built.dir, built.path, built.err = build() })
	if built.err != nil {
		tb.Fatal(built.err)
	}
	return built.path
}

// RemoveBinary deletes the binary Binary built, if it built one. Call it
// once the tests have run.
func RemoveBinary() {
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}

// build compiles ./cmd/migtrace of the module the test runs in. go test
// puts its own toolchain first in PATH, so "go" is the one testing us.
func build() (dir, path string, err error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", "", fmt.Errorf("building migtrace: the test runs outside a module (go env GOMOD is %q)", gomod)
	}
	dir, err = os.MkdirTemp("", "migtrace-servertest-")
	if err != nil {
		return "", "", fmt.Errorf("building migtrace: %w", err)
	}
	path = filepath.Join(dir, "migtrace")
	cmd := exec.Command("go", "build", "-o", path, "./cmd/migtrace")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build ./cmd/migtrace in %s: %w\n%s", cmd.Dir, err, out)
	}
	return dir, path, nil
}
