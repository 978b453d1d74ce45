package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// runReport is run with stdin.
func runReport(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(stdin)
	root.SetArgs(args)
	code = exitCode(root.Execute(), &errb)
	return out.String(), errb.String(), code
}

// traceFile writes ms as an OTLP JSON Lines file and returns its path.
func traceFile(t *testing.T, ms ...model.Side) string {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range ms {
		if err := reporttest.WriteJSONL(&buf, reporttest.Traces(m)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func seedTrace(t *testing.T) string {
	return traceFile(t, reporttest.SeedSource(), reporttest.SeedDestination())
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "report", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReportSeedTables(t *testing.T) {
	path := seedTrace(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"phases", []string{"report", "phases", "--role", "source", path}, golden(t, "seed-phases.txt")},
		{"adjustments", []string{"report", "adjustments", path}, golden(t, "seed-adjustments.txt")},
		{"adjustments by id", []string{"report", "adjustments", "--migration", reporttest.SeedMigrationID, "-o", "dtrace", path}, golden(t, "seed-adjustments.txt")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runReport(t, nil, tt.args...)
			if code != 0 || out != tt.want {
				t.Fatalf("exit %d, stderr %q\n--- got ---\n%s--- want ---\n%s", code, stderr, out, tt.want)
			}
		})
	}
}

func TestReportStdin(t *testing.T) {
	data, err := os.ReadFile(seedTrace(t))
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runReport(t, bytes.NewReader(data), "report", "phases", "--role", "source", "-")
	if code != 0 || out != golden(t, "seed-phases.txt") {
		t.Fatalf("exit %d, stderr %q, out:\n%s", code, stderr, out)
	}
}

func TestReportSeveralMigrations(t *testing.T) {
	fleet := reporttest.Fleet(2, 11)
	path := traceFile(t, fleet...)
	out, _, code := runReport(t, nil, "report", "phases", path)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	headings := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "migration ") {
			headings++
		}
	}
	if n := headings; n != 4 {
		t.Errorf("want 4 headings, got %d:\n%s", n, out)
	}
	out, _, code = runReport(t, nil, "report", "adjustments", "-o", "json", path)
	var tables []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &tables) != nil || len(tables) != 2 {
		t.Fatalf("exit %d, adjustments json:\n%s", code, out)
	}
	out, _, code = runReport(t, nil, "report", "summary", path)
	if code != 0 || !strings.Contains(out, "2 migrations (4 sides, 0 failed)") || !strings.Contains(out, "<- slowest") {
		t.Fatalf("exit %d, summary:\n%s", code, out)
	}
	out, _, code = runReport(t, nil, "report", "phases", "-o", "csv", "--migration", fleet[0].ID, "--role", "source", path)
	if code != 0 || strings.Count(out, "\n") != 1+len(fleet[0].Phases)+1 {
		t.Fatalf("exit %d, csv:\n%s", code, out)
	}
}

func TestReportCheck(t *testing.T) {
	// One line for the migration, over both its sides; what the seed
	// cannot show is named on it.
	out, stderr, code := runReport(t, nil, "report", "check", seedTrace(t))
	if code != 0 || !strings.HasPrefix(out, "OK migration "+reporttest.SeedMigrationID+": 31 rules verified on both sides; not verified: ") ||
		strings.Count(out, "\n") != 1 {
		t.Fatalf("clean: exit %d, stderr %q, out:\n%s", code, stderr, out)
	}

	bad := reporttest.SeedDestination()
	bad.Stages[model.StageIndex(schema.StageUserspace)].GuestTSCDelta += 2
	bad.Stages[model.StageIndex(schema.StageUserspace)].GuestTSC += 2
	bad.Stages[model.StageIndex(schema.StageKernel)].GuestTSC += 2
	honoured := false
	bad.Continuity.TSCOffsetHonoured = &honoured
	out, stderr, code = runReport(t, nil, "report", "check", traceFile(t, bad))
	if code != 1 {
		t.Fatalf("doctored: exit %d, want 1", code)
	}
	for _, want := range []string{
		"FAIL migration " + bad.ID + " destination: tsc-delta:",
		"expected 285087, got 285089",
		"note: migration " + bad.ID + " destination: TSC offset not honoured: continuity reflects the host TSC",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctored output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "check failed: 1 violation(s) in 1 migration(s)") {
		t.Errorf("stderr = %q", stderr)
	}

	out, _, code = runReport(t, nil, "report", "check", "-o", "json", traceFile(t, bad))
	var res []struct {
		OK          bool   `json:"ok"`
		Verdict     string `json:"verdict"`
		Findings    []struct{ Rule string }
		Verified    []struct{ Rule, Side string }
		NotVerified []struct{ Rule, Side, Reason string } `json:"not_verified"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil || len(res) != 1 || res[0].OK || res[0].Verdict != "FAIL" ||
		res[0].Findings[0].Rule != report.RuleTSCDelta {
		t.Fatalf("json: exit %d:\n%s", code, out)
	}
	// The source is absent: its rules and the cross-check are listed as
	// not verified, not passed.
	if len(res[0].Verified) == 0 || !slices.ContainsFunc(res[0].NotVerified, func(u struct{ Rule, Side, Reason string }) bool {
		return u.Rule == report.RuleSourceTimeData && strings.Contains(u.Reason, "source's own spans are not in the input")
	}) {
		t.Errorf("json lacks the unverified cross-check:\n%s", out)
	}
}

// realTrace is a trace migrate itself wrote (report/otlpread/testdata).
func realTrace(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join("..", "..", "report", "otlpread", "testdata", name)
}

// TestReportCheckExitStatus: 0 only for a migration verified clean; 1
// for a violation, an incomplete trace, a failure (unless allowed) or,
// with --strict, a rule not verified; 2 for a bad flag.
func TestReportCheckExitStatus(t *testing.T) {
	real := realTrace(t, "migrate-sim.jsonl")
	lines, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.SplitAfter(strings.TrimSuffix(string(lines), "\n"), "\n")
	cut := filepath.Join(t.TempDir(), "cut.jsonl")
	if err := os.WriteFile(cut, []byte(strings.Join(all[:len(all)-1], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := reporttest.SeedDestination()
	bad.Stages[model.StageIndex(schema.StageKernel)].GuestTSCDelta++
	bad.Stages[model.StageIndex(schema.StageKernel)].GuestTSC++
	bad.Unrecorded = nil
	bad.Stages[model.StageIndex(schema.StageKernel)].Hrtime = reporttest.SeedDstHrtime + 31849
	bad.Stages[model.StageIndex(schema.StageKernel)].VMMLatencyNs = 31849

	tests := []struct {
		name         string
		args         []string
		code         int
		stdout       string
		stderr       string
		stdoutAbsent string
	}{
		{"real migration", []string{real}, 0, "OK migration ", "", "not verified"},
		{"real migration, strict", []string{"--strict", real}, 0, "OK migration ", "", "not verified"},
		{"real migration as json", []string{"-o", "json", real}, 0, `"verdict": "OK"`, "", ""},
		{"kernel correction off", []string{traceFile(t, bad)}, 1, "destination: kernel-tsc: kernel TSC correction = ⌊31849 ns × 2649958945 Hz / 1e9⌋: expected 84398, got 84401", "1 violation(s) in 1 migration(s)", "OK migration"},
		{"last line lost", []string{cut}, 1, "INCOMPLETE migration ", "1 migration(s) incomplete", "OK migration"},
		{"failed migration", []string{realTrace(t, "migrate-sim-failed.jsonl")}, 1, ": result: the migration failed in TimeData", "violation(s)", "OK migration"},
		{"failed migration allowed", []string{"--allow-failed", realTrace(t, "migrate-sim-failed.jsonl")}, 0, "OK migration ", "", "FAIL"},
		{"seed, strict", []string{"--strict", seedTrace(t)}, 1, "OK migration ", "--strict: 1 migration(s) with rules not verified", ""},
		{"bad output", []string{"-o", "yaml", real}, 2, "", "--output", ""},
		{"bad flag", []string{"--allow-failed=maybe", real}, 2, "", "allow-failed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runReport(t, nil, append([]string{"report", "check"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(stderr, tt.stderr) ||
				(tt.stdoutAbsent != "" && strings.Contains(out, tt.stdoutAbsent)) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q), stdout (want %q, not %q):\n%s",
					code, tt.code, stderr, tt.stderr, tt.stdout, tt.stdoutAbsent, out)
			}
		})
	}
}

// TestReportPhasesRefusesNegativeTime: a phase that ends before it
// begins is refused, not printed as a negative time.
func TestReportPhasesRefusesNegativeTime(t *testing.T) {
	m := reporttest.SeedSource()
	p := &m.Phases[3]
	p.BeginNs, p.EndNs = p.EndNs, p.BeginNs
	out, stderr, code := runReport(t, nil, "report", "phases", traceFile(t, m))
	if code != 1 || out != "" || !strings.Contains(stderr, "TimeData: phase ends before it begins") {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s", code, stderr, out)
	}
}

func TestReportCheckHelpListsEveryRule(t *testing.T) {
	out, _, code := runReport(t, nil, "report", "check", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, r := range report.Rules {
		// A long name stands on a line of its own.
		if !strings.Contains(out, "\n  "+r.Name+" ") && !strings.Contains(out, "\n  "+r.Name+"\n") {
			t.Errorf("check --help does not list rule %s:\n%s", r.Name, out)
		}
	}
}

func TestReportBadInput(t *testing.T) {
	dir := t.TempDir()
	notJSON := filepath.Join(dir, "notes.txt")
	os.WriteFile(notJSON, []byte("{\"resourceSpans\": [\n"), 0o644)
	foreign := filepath.Join(dir, "foreign.jsonl")
	os.WriteFile(foreign, []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"GET /"}]}]}]}`+"\n"), 0o644)
	path := seedTrace(t)

	jaeger404 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	}))
	defer jaeger404.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()
	const tid = "0af7651916cd43dd8448eb211c80319c"

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no input", []string{"report", "phases"}, 2, "no input"},
		{"unknown report", []string{"report", "phase"}, 2, `unknown report "phase"`},
		{"bad role", []string{"report", "phases", "--role", "both", path}, 2, "--role"},
		{"bad output", []string{"report", "phases", "-o", "yaml", path}, 2, "want dtrace, table, json, csv"},
		{"summary has no dtrace", []string{"report", "summary", "-o", "dtrace", path}, 2, "--output"},
		{"adjustments of a source", []string{"report", "adjustments", "--role", "source", path}, 2, "destination"},
		{"jaeger without trace id", []string{"report", "phases", "--jaeger", "http://x"}, 2, "go together"},
		{"bad trace id", []string{"report", "phases", "--jaeger", "http://x", "--trace-id", "zz"}, 2, "invalid trace ID"},
		{"missing file", []string{"report", "phases", filepath.Join(dir, "absent.jsonl")}, 1, "absent.jsonl"},
		{"truncated JSON", []string{"report", "phases", notJSON}, 1, notJSON + ":1: not valid OTLP JSON"},
		{"no migtrace spans", []string{"report", "phases", foreign}, 1, "no migration spans"},
		{"unknown migration", []string{"report", "phases", "--migration", "nope", path}, 1, `migration not found: "nope"`},
		{"jaeger 404", []string{"report", "phases", "--jaeger", jaeger404.URL, "--trace-id", tid}, 1, "trace ID not found in Jaeger at " + jaeger404.URL},
		{"jaeger refused", []string{"report", "phases", "--jaeger", refused, "--trace-id", tid}, 1, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runReport(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q), stdout %q", code, tt.code, stderr, tt.want, out)
			}
		})
	}
}

func TestReportHelpAndCompletion(t *testing.T) {
	out, _, code := runReport(t, nil, "report", "adjustments", "--help")
	if code != 0 || !strings.Contains(out, "Propolis   the userspace stage") {
		t.Errorf("adjustments help does not explain the Propolis row:\n%s", out)
	}
	out, _, _ = runReport(t, nil, "__complete", "report", "phases", "-o", "")
	for _, f := range []string{"dtrace", "table", "json", "csv"} {
		if !strings.Contains(out, f+"\n") {
			t.Errorf("completion lacks %s:\n%s", f, out)
		}
	}
	out, _, _ = runReport(t, nil, "__complete", "report", "check", "--role", "")
	if !strings.Contains(out, "source\ndestination\n") {
		t.Errorf("role completion:\n%s", out)
	}
}

func TestReportSourceFromDestinationRecord(t *testing.T) {
	td := reporttest.Traces(reporttest.WithSourceReport(reporttest.SeedDestination(), reporttest.SeedSource()))
	var buf bytes.Buffer
	if err := reporttest.WriteJSONL(&buf, td); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runReport(t, &buf, "report", "phases", "--role", "source", "-")
	if code != 0 || out != golden(t, "seed-phases.txt") || !strings.Contains(stderr, "rebuilt from the destination's record") {
		t.Fatalf("exit %d, stderr %q, out:\n%s", code, stderr, out)
	}
}
