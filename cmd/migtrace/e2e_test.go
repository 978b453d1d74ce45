package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/migrate/server"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// migtraceBinary builds the command once per test run.
func migtraceBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "migtrace-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "migtrace")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveProcess runs `migtrace serve` until the test ends and waits until
// its API answers.
func serveProcess(t *testing.T, args ...string) (addr string, cmd *exec.Cmd) {
	t.Helper()
	addr = freeAddr(t)
	cmd = exec.Command(migtraceBinary(t), append([]string{"serve", "--listen", addr}, args...)...)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("serve %s logs:\n%s", addr, logs.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, _, code := run(t, "status", "--server", addr); code == 0 {
			return addr, cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve on %s never answered:\n%s", addr, logs.String())
		}
	}
}

func TestServePairMigrateCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	srcTrace, dstTrace := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "dst.jsonl")
	src, _ := serveProcess(t, "--boot", "--memory", "32MiB", "--dirty-rate", "8MiB", "--trace-file", srcTrace, "--name", "src")
	dst, _ := serveProcess(t, "--memory", "32MiB", "--trace-file", dstTrace, "--name", "dst")

	cmd := exec.Command(migtraceBinary(t), "migrate", "--from", src, "--to", dst)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("migrate: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"PHASE", "TIME ELAPSED (usec)", "RamPushPrePause", "TOTAL",
		"GUEST FREQ (Hz)", "Migration", "Propolis", "Kernel", "[adjustment]"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate output lacks %q:\n%s", want, out)
		}
	}
	// Not a terminal: progress comes as plain lines.
	if !strings.Contains(stderr.String(), "round 0") || !strings.Contains(stderr.String(), "success") {
		t.Errorf("progress lines missing:\n%s", stderr.String())
	}

	var st server.InstanceStatus
	stdoutS, _, code := run(t, "status", "--server", dst, "-o", "json")
	if code != 0 || json.Unmarshal([]byte(stdoutS), &st) != nil {
		t.Fatalf("status: %d %s", code, stdoutS)
	}
	if st.State != server.StateRunning || st.Name != "dst" || st.Migration == nil || st.Migration.Result != "success" {
		t.Errorf("destination status: %+v", st)
	}
	stdoutS, _, _ = run(t, "status", "--server", src)
	if !strings.Contains(stdoutS, "state:     migrated") {
		t.Errorf("source status:\n%s", stdoutS)
	}

	// A second migration fails cleanly: the source has no VM any more.
	cmd = exec.Command(migtraceBinary(t), "migrate", "--from", src, "--to", dst)
	outB, err := cmd.CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("second migrate: %v\n%s", err, outB)
	}
	if !strings.Contains(string(outB), "cannot migrate in while running") {
		t.Errorf("second migrate output:\n%s", outB)
	}
}

func TestMigrateFailureNamesPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	// Nobody listens at the destination: it cannot even be asked.
	src, _ := serveProcess(t, "--boot", "--memory", "32MiB")
	dst := freeAddr(t)
	_, errOut, code := run(t, "migrate", "--from", src, "--to", dst)
	if code != 1 || !strings.Contains(errOut, "starting the migration") {
		t.Errorf("migrate to nowhere: exit %d, %s", code, errOut)
	}
	// A destination asked to pull from a dead source fails in Sync and
	// says so; the exit status is 1.
	dst2, _ := serveProcess(t)
	_, errOut, code = run(t, "migrate", "--from", freeAddr(t), "--to", dst2)
	if code != 1 || !strings.Contains(errOut, "phase Sync") {
		t.Errorf("migrate from nowhere: exit %d, %s", code, errOut)
	}
}

func TestServeRefusesPublicAddressWithoutTLS(t *testing.T) {
	_, errOut, code := run(t, "serve", "--listen", "0.0.0.0:0")
	if code != 2 || !strings.Contains(errOut, "--insecure") {
		t.Errorf("exit %d, %s", code, errOut)
	}
	_, errOut, code = run(t, "serve", "--listen", "127.0.0.1:0", "--tls-cert", "x")
	if code != 2 || !strings.Contains(errOut, "go together") {
		t.Errorf("partial TLS flags: exit %d, %s", code, errOut)
	}
}

func TestDemoCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a migration")
	}
	trace := filepath.Join(t.TempDir(), "demo.jsonl")
	out, errOut, code := run(t, "demo", "--memory", "16MiB", "--dirty-rate", "4MiB", "--warmup", "50ms", "--trace-file", trace)
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"source", "destination", "PHASE", "Pause", "GUEST FREQ (Hz)", "Kernel"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// Nothing is lost at shutdown: one migration span per side and one
	// span per phase each side ran (9 on the source, 8 on the destination).
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spans := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(sc.Bytes())
		if err != nil {
			t.Fatalf("trace line does not parse as OTLP JSON: %v", err)
		}
		spans += td.SpanCount()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if spans != 2+9+8 {
		t.Errorf("trace file holds %d spans, want %d", spans, 2+9+8)
	}
}
