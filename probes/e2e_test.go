package probes_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/probes/events"
	"github.com/migtrace/migtrace/probes/probetest"
	"github.com/migtrace/migtrace/probes/uprobe"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/tracing/schema"
)

// hrtimeToleranceNs is how far a probe's phase boundary may be from the
// span's. Zero: migrate reads the clock once per boundary and passes that
// same int64 to the probe (PhaseBegin/PhaseEnd) and to the span's
// begin/end attributes, which report prefers over the span's wall-clock
// timestamps. Any difference would be a bug in a tracer or in report, not
// jitter. The µs columns are (end − begin) / 1000 on both sides, so they
// match exactly too; so do the time-data stages, whose values (TSC,
// boot_hrtime, durations) the probe and the span receive from the same
// variables.
const hrtimeToleranceNs = 0

// e2eStepTimeout bounds each wait on another process, so a hung tracer or
// server fails the test instead of stalling it.
const e2eStepTimeout = 30 * time.Second

// TestLiveMigrationProbesMatchReport runs a real migration between two
// `migtrace serve` processes with `migtrace trace` and the bpftrace scripts
// attached by PID, and checks that every live table equals the one `migtrace
// report` rebuilds from the same process's --trace-file: the destination's
// phases and time adjustments, and the source's phases.
func TestLiveMigrationProbesMatchReport(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: starts a migration between two processes")
	}
	// Both tracers watch the same migration, so without bpftrace there is
	// nothing to run (and in CI its absence fails).
	probetest.Bpftrace(t)
	bin := servertest.Binary(t)
	// Both servers run the same file, so the scripts' own pid filter is
	// what keeps each table to its process (bpftrace 0.17 ignores -p for
	// uprobes): the line-for-line checks below would catch a leak.
	srcBin := bin

	dir := t.TempDir()
	srcTrace, dstTrace := filepath.Join(dir, "source.jsonl"), filepath.Join(dir, "destination.jsonl")
	src := servertest.Start(t, srcBin, servertest.Options{Name: "source",
		Args: []string{"--boot", "--memory", "32MiB", "--dirty-rate", "8MiB", "--trace-file", srcTrace}})
	dst := servertest.Start(t, bin, servertest.Options{Name: "destination",
		Args: []string{"--memory", "32MiB", "--trace-file", dstTrace}})

	// One in-process attach decides whether this machine can trace at all;
	// the tracers below then fail rather than skip.
	tr, err := uprobe.Attach(events.Targets(), &uprobe.Options{PID: dst.PID()})
	probetest.SkipIfNotSupported(t, err)
	tr.Close()

	dstPID, srcPID := fmt.Sprint(dst.PID()), fmt.Sprint(src.PID())
	live := map[string]*traceRun{}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"destination phases json", []string{"trace", "phases", "--pid", dstPID, "-o", "json"}},
		{"destination phases dtrace", []string{"trace", "phases", "--pid", dstPID, "-o", "dtrace"}},
		{"destination adjustments json", []string{"trace", "adjustments", "--pid", dstPID, "-o", "json"}},
		{"destination adjustments dtrace", []string{"trace", "adjustments", "--pid", dstPID, "-o", "dtrace"}},
		{"source phases json", []string{"trace", "phases", "--pid", srcPID, "-o", "json"}},
		{"source phases dtrace", []string{"trace", "phases", "--pid", srcPID, "-o", "dtrace"}},
	} {
		live[tc.name] = startTrace(t, tc.name, bin, append(tc.args, "--count", "1")...)
	}
	btDstPhases := probetest.StartBpftrace(t, "bpftrace/live-migration-times.bt", bin, dst.PID())
	btDstAdjust := probetest.StartBpftrace(t, "bpftrace/time-adjustments.bt", bin, dst.PID())
	btSrcPhases := probetest.StartBpftrace(t, "bpftrace/live-migration-times.bt", srcBin, src.PID())

	runMigtrace(t, bin, "migrate", "--from", src.Addr(), "--to", dst.Addr())
	got := map[string]string{}
	for name, r := range live {
		got[name] = r.wait(t)
	}
	// Stopping the servers flushes their trace files and ends bpftrace,
	// which prints at exit whatever it has left.
	for _, s := range []*servertest.Proc{dst, src} {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	}
	btOut := map[string]string{
		"destination phases":      btDstPhases.Wait(t),
		"destination adjustments": btDstAdjust.Wait(t),
		"source phases":           btSrcPhases.Wait(t),
	}

	want := map[string]string{}
	for _, rc := range []struct {
		name string
		args []string
	}{
		{"destination phases", []string{"report", "phases", "--role", "destination", dstTrace}},
		{"destination adjustments", []string{"report", "adjustments", dstTrace}},
		{"source phases", []string{"report", "phases", "--role", "source", srcTrace}},
	} {
		for _, format := range []string{"json", "dtrace"} {
			want[rc.name+" "+format] = runMigtrace(t, bin, append(rc.args, "-o", format)...)
		}
	}

	dstReport := onePhaseTable(t, "report destination phases", want["destination phases json"])
	srcReport := onePhaseTable(t, "report source phases", want["source phases json"])
	adjReport := oneAdjustmentTable(t, "report destination adjustments", want["destination adjustments json"])
	checkPhaseList(t, "destination", dstReport, schema.RoleDestination)
	checkPhaseList(t, "source", srcReport, schema.RoleSource)
	if dstReport.MigrationID != srcReport.MigrationID || adjReport.MigrationID != dstReport.MigrationID {
		t.Errorf("report: migration IDs differ: destination %q, source %q, adjustments %q",
			dstReport.MigrationID, srcReport.MigrationID, adjReport.MigrationID)
	}
	for _, side := range []struct {
		name string
		t    render.PhaseTable
	}{{"destination", dstReport}, {"source", srcReport}} {
		if side.t.Pages == nil || side.t.Pages.UnpausedPages == 0 {
			t.Fatalf("report %s: no pages moved before the pause: %+v", side.name, side.t.Pages)
		}
	}
	// Every page the source sent, zero pages included, the destination
	// received: its probes count zero pages too.
	if s, d := srcReport.Pages, dstReport.Pages; s.TotalPages != d.TotalPages || s.TotalBytes != d.TotalBytes {
		t.Errorf("report: the source moved %d pages (%d bytes), the destination %d (%d bytes)",
			s.TotalPages, s.TotalBytes, d.TotalPages, d.TotalBytes)
	}

	comparePhaseTables(t, "trace destination phases",
		onePhaseTable(t, "trace destination phases", got["destination phases json"]), dstReport)
	comparePhaseTables(t, "trace source phases",
		onePhaseTable(t, "trace source phases", got["source phases json"]), srcReport)
	compareAdjustmentTables(t, "trace destination adjustments",
		oneAdjustmentTable(t, "trace destination adjustments", got["destination adjustments json"]), adjReport)

	// The DTrace layout prints the same numbers, rounded to µs: every
	// tracer's rows must be report's, line for line.
	for _, table := range []string{"destination phases", "destination adjustments", "source phases"} {
		wantRows := want[table+" dtrace"]
		compareLines(t, "trace "+table+" -o dtrace", got[table+" dtrace"], wantRows)
		compareLines(t, "bpftrace "+table, btOut[table], wantRows)
	}
	t.Logf("destination phases (report):\n%s", want["destination phases dtrace"])
	t.Logf("destination adjustments (report):\n%s", want["destination adjustments dtrace"])
	t.Logf("source phases (report):\n%s", want["source phases dtrace"])
}

// checkPhaseList checks that a successful migration's side ran every phase
// of the protocol in order (the destination has no Pause of its own), so
// that equal tables cannot be equally empty.
func checkPhaseList(t *testing.T, what string, tab render.PhaseTable, role schema.Role) {
	t.Helper()
	var want, got []string
	for _, p := range schema.Phases {
		if role == schema.RoleDestination && p == schema.PhasePause {
			continue
		}
		want = append(want, p.String())
	}
	for _, r := range tab.Rows {
		got = append(got, r.Phase)
		if r.Failed {
			t.Errorf("report %s: phase %s failed", what, r.Phase)
		}
	}
	if tab.Role != role.String() || !reflect.DeepEqual(got, want) {
		t.Errorf("report %s: role %s, phases %v; want role %s, phases %v", what, tab.Role, got, role, want)
	}
}

func comparePhaseTables(t *testing.T, what string, got, want render.PhaseTable) {
	t.Helper()
	if got.MigrationID != want.MigrationID || got.Role != want.Role {
		t.Errorf("%s: migration %s %s, report has %s %s", what, got.MigrationID, got.Role, want.MigrationID, want.Role)
	}
	if len(got.Rows) != len(want.Rows) {
		t.Errorf("%s: phases %v, report has %v", what, phaseNames(got), phaseNames(want))
		return
	}
	for i, g := range got.Rows {
		w := want.Rows[i]
		switch {
		case g.Phase != w.Phase:
			t.Errorf("%s: row %d is %s, report has %s", what, i, g.Phase, w.Phase)
		case !withinNs(g.BeginNs, w.BeginNs) || !withinNs(g.EndNs, w.EndNs):
			t.Errorf("%s: %s ran %d..%d ns, report has %d..%d (tolerance %d ns)",
				what, g.Phase, g.BeginNs, g.EndNs, w.BeginNs, w.EndNs, hrtimeToleranceNs)
		case g.ElapsedUs != w.ElapsedUs:
			t.Errorf("%s: %s took %d µs, report has %d", what, g.Phase, g.ElapsedUs, w.ElapsedUs)
		case g.Pages != w.Pages || g.Bytes != w.Bytes || g.Failed != w.Failed:
			t.Errorf("%s: %s moved %d pages, %d bytes (failed %t); report has %d, %d (%t)",
				what, g.Phase, g.Pages, g.Bytes, g.Failed, w.Pages, w.Bytes, w.Failed)
		}
	}
	if got.TotalUs != want.TotalUs {
		t.Errorf("%s: TOTAL %d µs, report has %d", what, got.TotalUs, want.TotalUs)
	}
	if !reflect.DeepEqual(got.Pages, want.Pages) {
		t.Errorf("%s: page summary %s, report has %s", what, jsonString(got.Pages), jsonString(want.Pages))
	}
	if !reflect.DeepEqual(got, want) { // anything the checks above do not name
		t.Errorf("%s: table differs from report's:\n%s\nreport:\n%s", what, jsonString(got), jsonString(want))
	}
}

func compareAdjustmentTables(t *testing.T, what string, got, want render.AdjustmentTable) {
	t.Helper()
	if got.MigrationID != want.MigrationID || got.Role != want.Role {
		t.Errorf("%s: migration %s %s, report has %s %s", what, got.MigrationID, got.Role, want.MigrationID, want.Role)
	}
	if got.GuestFreq != want.GuestFreq || got.UptimeUs != want.UptimeUs || got.TotalUs != want.TotalUs {
		t.Errorf("%s: freq %d Hz, uptime %d µs, total %d µs; report has %d, %d, %d",
			what, got.GuestFreq, got.UptimeUs, got.TotalUs, want.GuestFreq, want.UptimeUs, want.TotalUs)
	}
	if len(got.Stages) != len(want.Stages) || len(want.Stages) != len(schema.Stages) {
		t.Errorf("%s: %d stages, report has %d, want %d", what, len(got.Stages), len(want.Stages), len(schema.Stages))
		return
	}
	for i, g := range got.Stages {
		w := want.Stages[i]
		if g != w {
			t.Errorf("%s: %s stage: %d µs, guest TSC %d, boot_hrtime %d; report has %s: %d µs, %d, %d",
				what, g.Event, g.DurationUs, g.GuestTSC, g.BootHrtime, w.Event, w.DurationUs, w.GuestTSC, w.BootHrtime)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: table differs from report's:\n%s\nreport:\n%s", what, jsonString(got), jsonString(want))
	}
}

func withinNs(a, b int64) bool {
	d := a - b
	return d <= hrtimeToleranceNs && -d <= hrtimeToleranceNs
}

func phaseNames(t render.PhaseTable) []string {
	names := make([]string, len(t.Rows))
	for i, r := range t.Rows {
		names[i] = r.Phase
	}
	return names
}

func jsonString(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// onePhaseTable decodes -o json phases output holding exactly one table.
func onePhaseTable(t *testing.T, what, out string) render.PhaseTable {
	t.Helper()
	var tables []render.PhaseTable
	decodeOne(t, what, out, &tables)
	if len(tables) != 1 {
		t.Fatalf("%s: %d tables, want 1:\n%s", what, len(tables), out)
	}
	return tables[0]
}

func oneAdjustmentTable(t *testing.T, what, out string) render.AdjustmentTable {
	t.Helper()
	var tables []render.AdjustmentTable
	decodeOne(t, what, out, &tables)
	if len(tables) != 1 {
		t.Fatalf("%s: %d tables, want 1:\n%s", what, len(tables), out)
	}
	return tables[0]
}

func decodeOne(t *testing.T, what, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: decoding JSON: %v\n%s", what, err, out)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value:\n%s", what, out)
	}
}

// compareLines reports the first line where got differs from want, then
// both texts.
func compareLines(t *testing.T, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			t.Errorf("%s: line %d is %q, report has %q\ngot:\n%s\nreport:\n%s", what, i+1, gl, wl, got, want)
			return
		}
	}
}

// runMigtrace runs a migtrace command to completion and returns its
// stdout; a failure exit fails the test.
func runMigtrace(t *testing.T, bin string, args ...string) string {
	t.Helper()
	r := servertest.Run(t, bin, args...)
	if r.Code != 0 {
		t.Fatal(r)
	}
	return r.Stdout
}

// lockedBuffer collects a tracer's output, readable while it runs (as
// servertest's does for serve: a tracer is not a server).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// traceRun is a running `migtrace trace`.
type traceRun struct {
	name   string
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	exited chan struct{}
	err    error
}

// traceAttached starts the line `migtrace trace` writes to stderr once
// every uprobe is attached.
const traceAttached = "tracing live migration probes"

// startTrace runs `migtrace ARGS` and returns once it reports its probes
// attached.
func startTrace(t *testing.T, name, bin string, args ...string) *traceRun {
	t.Helper()
	r := &traceRun{name: name, exited: make(chan struct{})}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Stdout = &r.stdout
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	attached := make(chan struct{})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			r.stderr.Write([]byte(sc.Text() + "\n"))
			if !seen && strings.HasPrefix(sc.Text(), traceAttached) {
				seen = true
				close(attached)
			}
		}
	}()
	go func() {
		<-copied // Wait closes the pipe: read it all first
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	})
	select {
	case <-attached:
	case <-r.exited:
		t.Fatalf("trace %s exited before attaching: %v\n%s", name, r.err, r.stderr.String())
	case <-time.After(e2eStepTimeout):
		t.Fatalf("trace %s: not attached after %v\n%s", name, e2eStepTimeout, r.stderr.String())
	}
	return r
}

// wait waits for the tracer to exit (after its --count migrations) and
// returns what it printed; any warning (lost or undecodable records) fails
// the test.
func (r *traceRun) wait(t *testing.T) string {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(e2eStepTimeout):
		t.Fatalf("trace %s: still running %v after the migration\n%s", r.name, e2eStepTimeout, r.stderr.String())
	}
	if r.err != nil {
		t.Fatalf("trace %s: %v\n%s", r.name, r.err, r.stderr.String())
	}
	if strings.Contains(r.stderr.String(), "warning") {
		t.Errorf("trace %s warned:\n%s", r.name, r.stderr.String())
	}
	return r.stdout.String()
}
