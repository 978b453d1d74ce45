package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/server/servertest"
)

func TestServePairMigrateCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	srcTrace, dstTrace := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "dst.jsonl")
	bin := servertest.Binary(t)
	src := servertest.Start(t, bin, servertest.Options{Name: "src",
		Args: []string{"--boot", "--memory", "32MiB", "--dirty-rate", "8MiB", "--trace-file", srcTrace}}).Addr()
	dst := servertest.Start(t, bin, servertest.Options{Name: "dst",
		Args: []string{"--memory", "32MiB", "--trace-file", dstTrace}}).Addr()

	mig := servertest.Migrate(t, bin, src, dst)
	if mig.Code != 0 {
		t.Fatalf("migrate: %s", mig)
	}
	out := mig.Stdout
	for _, want := range []string{"PHASE", "TIME ELAPSED (usec)", "RamPushPrePause", "TOTAL",
		"GUEST FREQ (Hz)", "Migration", "Propolis", "Kernel", "[adjustment]"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate output lacks %q:\n%s", want, out)
		}
	}
	// Not a terminal: progress comes as plain lines.
	if !strings.Contains(mig.Stderr, "round 0") || !strings.Contains(mig.Stderr, "success") {
		t.Errorf("progress lines missing:\n%s", mig.Stderr)
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
	again := servertest.Migrate(t, bin, src, dst)
	if again.Code != 1 {
		t.Fatalf("second migrate: %s", again)
	}
	if !strings.Contains(again.Stdout+again.Stderr, "cannot migrate in while running") {
		t.Errorf("second migrate output: %s", again)
	}
}

func TestMigrateFailureNamesPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	// Nobody listens at the destination: it cannot even be asked.
	bin := servertest.Binary(t)
	src := servertest.Start(t, bin, servertest.Options{Args: []string{"--boot", "--memory", "32MiB"}}).Addr()
	dst := servertest.FreeAddr(t)
	_, errOut, code := run(t, "migrate", "--from", src, "--to", dst)
	if code != 1 || !strings.Contains(errOut, "starting the migration") {
		t.Errorf("migrate to nowhere: exit %d, %s", code, errOut)
	}
	// A destination asked to pull from a dead source fails in Sync and
	// says so; the exit status is 1.
	dst2 := servertest.Start(t, bin, servertest.Options{}).Addr()
	_, errOut, code = run(t, "migrate", "--from", servertest.FreeAddr(t), "--to", dst2)
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
