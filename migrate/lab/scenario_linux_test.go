package lab_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/lab"
	"github.com/migtrace/migtrace/tracing/schema"
)

// "seed's clocks": the destination's CLOCK_MONOTONIC is 9.2 s behind the
// source's, as between the two hosts of propolis PR #359's worked example,
// and their wall clocks agree. After a real migration between them,
// `report adjustments` shows the Migration → userspace row rebasing
// boot_hrtime by the hosts' hrtime difference, about −9.2 s, and `report
// check` finds the adjustment math sound from both traces.
func TestSeedClocksScenario(t *testing.T) {
	if err := lab.TimeNamespaces(); err != nil {
		t.Skip(err)
	}
	const (
		srcOffset = 20 * time.Second
		dstOffset = 10800 * time.Millisecond
		want      = dstOffset - srcOffset // −9.2 s
	)
	ctx := testCtx(t, 60*time.Second)
	l := newLab(t)
	src := addHost(t, ctx, l, "src", lab.HostOptions{MonotonicOffset: srcOffset})
	dst := addHost(t, ctx, l, "dst", lab.HostOptions{MonotonicOffset: dstOffset})
	link, err := l.Link(ctx, src, dst, lab.LinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srcTrace, dstTrace := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "dst.jsonl")
	if err := src.Serve(ctx, "--boot", "--memory", "32MiB", "--dirty-rate", "8MiB", "--trace-file", srcTrace); err != nil {
		t.Fatal(err)
	}
	if err := dst.Serve(ctx, "--memory", "32MiB", "--trace-file", dstTrace); err != nil {
		t.Fatal(err)
	}
	dstSt, _ := migrateOnce(t, ctx, src, dst, link.ServeAddr(src))
	migrationRow := dstSt.Migration.Detail.Stage(schema.StageMigration)
	// Stop, not Kill: serve flushes its trace file on SIGTERM.
	for _, h := range []*lab.Host{src, dst} {
		if err := h.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}

	report := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, migtraceBin, append([]string{"report"}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if err != nil {
			t.Logf("migtrace report %v: stderr:\n%s", args, errb.String())
		}
		return out.String(), err
	}
	table, err := report("adjustments", dstTrace)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report adjustments:\n%s", table)
	out, err := report("adjustments", "-o", "json", dstTrace)
	if err != nil {
		t.Fatal(err)
	}
	var tables []struct {
		Role        string `json:"role"`
		Adjustments []struct {
			From            string `json:"from"`
			To              string `json:"to"`
			BootHrtimeDelta int64  `json:"boot_hrtime_delta"`
		} `json:"adjustments"`
	}
	if err := json.Unmarshal([]byte(out), &tables); err != nil {
		t.Fatalf("report adjustments -o json: %v\n%s", err, out)
	}
	if len(tables) != 1 || len(tables[0].Adjustments) == 0 || tables[0].Adjustments[0].From != "Migration" || tables[0].Adjustments[0].To != "Propolis" {
		t.Fatalf("report adjustments -o json: want one destination table starting Migration -> Propolis:\n%s", out)
	}
	got := time.Duration(tables[0].Adjustments[0].BootHrtimeDelta)
	t.Logf("Migration -> userspace boot_hrtime delta %d ns (%v); hosts' hrtime difference %v; migration delta %v",
		int64(got), got, want, time.Duration(migrationRow.MigrateDeltaNs))
	if diff := got - want; diff < -500*time.Millisecond || diff > 500*time.Millisecond {
		t.Errorf("boot_hrtime delta %v, want %v ± 0.5 s", got, want)
	}

	check, err := report("check", dstTrace, srcTrace)
	t.Logf("report check:\n%s", check)
	if err != nil {
		t.Errorf("report check: %v, want exit 0", err)
	}
}
