package probetest

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/migtrace/migtrace/probes/uprobe"
)

// SkipIfNotSupported skips t when err says the machine cannot trace
// (no BPF, uprobes or privileges); any other non-nil error fails t.
func SkipIfNotSupported(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, uprobe.ErrNotSupported) || errors.Is(err, uprobe.ErrPermission) {
		tb.Skipf("skipping: uprobe tracing unavailable here: %v", err)
	}
	tb.Fatal(err)
}

// Bpftrace returns bpftrace's path. Without it the test skips, except in
// CI (CI=true), where bpftrace is a declared dependency and its absence fails.
func Bpftrace(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("bpftrace")
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("bpftrace is required in CI (apt-get install -y bpftrace): %v", err)
		}
		tb.Skip("skipping: bpftrace not installed")
	}
	return path
}

var (
	buildMu    sync.Mutex
	buildCache map[string]string // nil unless RunMain set up the shared directory
	buildDir   string
)

// RunMain runs the tests with builds shared across them (each target is
// built once per test binary) and removes the binaries afterwards. Call it
// from TestMain: os.Exit(probetest.RunMain(m)). Without it, Build builds
// into each test's own temporary directory.
func RunMain(m *testing.M) int {
	d, err := os.MkdirTemp("", "migtrace-probetest-")
	if err != nil {
		panic(err) // no temporary directory: no test could run anyway
	}
	buildMu.Lock()
	buildDir, buildCache = d, map[string]string{}
	buildMu.Unlock()
	defer os.RemoveAll(d)
	return m.Run()
}

// Build compiles the main package pkg (an import path) with the extra go
// build flags and returns the binary's path. It is not servertest.Binary
// on purpose: the probe tests need any package and stripped or PIE builds.
func Build(tb testing.TB, pkg string, flags ...string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := pkg + "\x00" + strings.Join(flags, "\x00")
	if bin, ok := buildCache[key]; ok {
		return bin
	}
	dir := buildDir
	if buildCache == nil {
		dir = tb.TempDir()
	}
	bin := filepath.Join(dir, filepath.Base(pkg)+"-"+strings.Map(safeRune, strings.Join(flags, "_")))
	args := append([]string{"build", "-o", bin}, flags...)
	cmd := exec.Command(goTool(), append(args, pkg)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
	}
	if buildCache != nil {
		buildCache[key] = bin
	}
	return bin
}

func safeRune(r rune) rune {
	if r == '/' || r == ' ' || r == '=' || r == '\'' {
		return '_'
	}
	return r
}

func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TargetPackage is the import path of the probe target.
const TargetPackage = "github.com/migtrace/migtrace/probes/internal/probetarget"

// BuildTarget builds the probe target with the extra go build flags.
func BuildTarget(tb testing.TB, flags ...string) string {
	return Build(tb, TargetPackage, flags...)
}

// Process is a started probe target waiting for its go-ahead.
type Process struct {
	Cmd    *exec.Cmd
	PID    int
	stdin  io.WriteCloser
	stdout *bufio.Reader
}

// Start runs bin with args, waits for its "ready" line and registers a
// cleanup that kills it if the test ends early. It starts probe targets,
// which talk over stdio; servertest.Start starts serve processes.
func Start(tb testing.TB, bin string, args ...string) *Process {
	tb.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &Process{Cmd: cmd, PID: cmd.Process.Pid, stdin: stdin, stdout: bufio.NewReader(stdout)}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	if line, err := p.stdout.ReadString('\n'); err != nil || line != "ready\n" {
		tb.Fatalf("%s: want \"ready\", got %q (%v)", bin, line, err)
	}
	return p
}

// Go lets the target run its workload and returns its result line
// ("done", or "ns/call X" in loop mode) after it exits.
func (p *Process) Go(tb testing.TB) string {
	tb.Helper()
	line := p.Step(tb)
	if err := p.Cmd.Wait(); err != nil {
		tb.Fatalf("target: %v", err)
	}
	return line
}

// Step gives one go-ahead and returns the result line that follows, for
// targets that run several rounds (loop -rounds).
func (p *Process) Step(tb testing.TB) string {
	tb.Helper()
	if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
		tb.Fatal(err)
	}
	line, err := p.stdout.ReadString('\n')
	if err != nil {
		tb.Fatalf("reading the target's result: %v", err)
	}
	return strings.TrimSpace(line)
}
