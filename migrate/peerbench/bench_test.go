package peerbench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce   sync.Once
	migtraceBin string
	buildErr    error
	buildDir    string
)

// TestMain removes the migtrace binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildMigtrace builds ./cmd/migtrace once for the package's tests.
func buildMigtrace(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs migtrace: skipped in -short mode")
	}
	buildOnce.Do(func() {
		dir, err := WorkDir("")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		migtraceBin = filepath.Join(dir, "migtrace")
		out, err := exec.Command("go", "build", "-o", migtraceBin, "github.com/migtrace/migtrace/cmd/migtrace").CombinedOutput()
		if err != nil {
			buildErr = err
			migtraceBin = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building migtrace: %v\n%s", buildErr, migtraceBin)
	}
	return migtraceBin
}

// TestRunMigtrace migrates a small sim VM between two migtrace serve
// processes and checks the figures the benchmark takes from them.
func TestRunMigtrace(t *testing.T) {
	bin := buildMigtrace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := RunMigtrace(ctx, MigtraceConfig{
		Binary: bin, Backend: "sim", MemoryBytes: 64 << 20, DirtyRate: 16 << 20,
		DowntimeTarget: 30 * time.Millisecond, Warmup: 200 * time.Millisecond,
		Dir: t.TempDir(), Name: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	smp, err := migtraceSample(res)
	if err != nil {
		t.Fatal(err)
	}
	if smp.GuestBytes < 64<<20 || smp.Rounds < 2 || smp.ZeroPages == 0 {
		t.Errorf("sample %+v: want at least the guest's 64 MiB moved over 2 rounds, some as zero pages", smp)
	}
	if smp.Total <= smp.Downtime || smp.Blackout < smp.Downtime/2 {
		t.Errorf("sample %+v: total must exceed downtime, and blackout cover most of it", smp)
	}
	// RunMigtrace already required the trace files to agree with the API.
	if res.TraceBlackout != smp.Blackout {
		t.Errorf("trace blackout %v, sample %v", res.TraceBlackout, smp.Blackout)
	}
}

// TestRun runs the whole benchmark once on a small idle case with QEMU
// and migtrace sim and renders it.
func TestRun(t *testing.T) {
	qemu := requireQEMU(t)
	bin := buildMigtrace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	small := Case{Name: "idle 64 MiB", MemoryMiB: 64}
	var log bytes.Buffer
	r, err := Run(ctx, Config{
		Runs: 1, Cases: []Case{small}, Systems: []System{systemQEMU, systemSim},
		MaxBandwidth: 1 << 30, DowntimeTarget: 30 * time.Millisecond,
		QEMU: qemu, Migtrace: bin, Warmup: time.Second, Dir: t.TempDir(), Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sr := range r.Cases[0].Systems {
		if len(sr.Samples) != 1 || len(sr.Errors) != 0 {
			t.Errorf("%s: %d samples, errors %q", sr.System.Name, len(sr.Samples), sr.Errors)
			continue
		}
		s := sr.Samples[0]
		if s.Total <= 0 || s.Blackout <= 0 || s.GuestBytes < 64<<20 || s.Rounds < 2 || s.Load1 < 0 {
			t.Errorf("%s: sample %+v", sr.System.Name, s)
		}
		// An idle guest's memory is nearly all zero pages.
		if s.ZeroPages < 64<<20/4096*9/10 {
			t.Errorf("%s: %d zero pages of an idle 64 MiB guest", sr.System.Name, s.ZeroPages)
		}
	}
	var out bytes.Buffer
	if err := Render(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| idle 64 MiB | QEMU kvm", "| idle 64 MiB | migtrace sim", "1/1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("rendered report lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("%s\n%s", log.String(), out.String())
}
