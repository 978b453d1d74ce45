package render_test

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

var update = flag.Bool("update", false, "rewrite report/testdata/render/*.golden from the current output (never the seed captures)")

const testdata = "../testdata"

// readBack writes ms as OTLP JSON lines to a temp file and reads them back
// with the real reader, so golden tests cover decoding as well.
func readBack(t *testing.T, ms ...model.Side) []model.Side {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if err := reporttest.WriteJSONL(f, reporttest.Traces(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r := otlpread.New()
	if err := r.ReadFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	got, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func selectRole(t *testing.T, ms []model.Side, role schema.Role) []model.Side {
	t.Helper()
	sel, err := report.Select(ms, report.Selection{Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// sharedGolden is ../shared/golden next to the repository root, where the
// project keeps the captures taken from the seed; "" when absent.
func sharedGolden(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			g := filepath.Join(dir, "..", "shared", "golden")
			if _, err := os.Stat(g); err == nil {
				return g
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// TestSeedCapturesMatchShared guards the testdata copies of the seed's
// captures against drifting from the project's shared originals.
func TestSeedCapturesMatchShared(t *testing.T) {
	shared := sharedGolden(t)
	if shared == "" {
		t.Skip("../shared/golden not present; testdata copies are authoritative")
	}
	for _, name := range []string{"seed-phases.txt", "seed-adjustments.txt", "seed-phases.timestamps"} {
		want, err := os.ReadFile(filepath.Join(shared, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(testdata, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("testdata/%s differs from %s", name, filepath.Join(shared, name))
		}
	}
}

// TestSeedPhasesMatchTimestamps ties reporttest's seed phases to the
// capture's begin/end timestamps file.
func TestSeedPhasesMatchTimestamps(t *testing.T) {
	f, err := os.Open(filepath.Join(testdata, "seed-phases.timestamps"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []model.PhaseTiming
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			t.Fatalf("bad timestamps line %q", line)
		}
		p, err := schema.ParsePhase(fields[0])
		if err != nil {
			t.Fatal(err)
		}
		b, err1 := strconv.ParseInt(fields[1], 10, 64)
		e, err2 := strconv.ParseInt(fields[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad timestamps line %q", line)
		}
		want = append(want, model.PhaseTiming{Phase: p, BeginNs: b, EndNs: e})
	}
	got := reporttest.SeedPhases()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reporttest.SeedPhases() = %v\nwant (from the timestamps file) %v", got, want)
	}
}

func TestGoldenSeedPhases(t *testing.T) {
	ms := selectRole(t, readBack(t, reporttest.SeedSource(), reporttest.SeedDestination()), schema.RoleSource)
	var buf bytes.Buffer
	if err := render.Phases(&buf, ms, render.FormatDTrace); err != nil {
		t.Fatal(err)
	}
	compareFile(t, filepath.Join(testdata, "seed-phases.txt"), buf.Bytes())
}

// TestGoldenSeedPhasesFromDestination rebuilds the source's table from a
// destination-only trace, via the phase timings the source sent it.
func TestGoldenSeedPhasesFromDestination(t *testing.T) {
	td := reporttest.Traces(reporttest.WithSourceReport(reporttest.SeedDestination(), reporttest.SeedSource()))
	path := filepath.Join(t.TempDir(), "dst.jsonl")
	var file bytes.Buffer
	if err := reporttest.WriteJSONL(&file, td); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	r := otlpread.New()
	if err := r.ReadFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	all, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	ms := selectRole(t, all, schema.RoleSource)
	if !ms[0].ReportedByPeer {
		t.Fatal("source side not marked as reported by the destination")
	}
	var buf bytes.Buffer
	if err := render.Phases(&buf, ms, render.FormatDTrace); err != nil {
		t.Fatal(err)
	}
	compareFile(t, filepath.Join(testdata, "seed-phases.txt"), buf.Bytes())
}

func TestGoldenSeedAdjustments(t *testing.T) {
	ms := selectRole(t, readBack(t, reporttest.SeedSource(), reporttest.SeedDestination()), schema.RoleDestination)
	var buf bytes.Buffer
	if err := render.Adjustments(&buf, ms, render.FormatDTrace); err != nil {
		t.Fatal(err)
	}
	compareFile(t, filepath.Join(testdata, "seed-adjustments.txt"), buf.Bytes())
}

// TestGoldenRenderings pins every other format against our own goldens
// (regenerate with -update after checking the change by eye).
func TestGoldenRenderings(t *testing.T) {
	seed := readBack(t, reporttest.SeedSource(), reporttest.SeedDestination())
	fleet := readBack(t, reporttest.Fleet(3, 7)...)
	src := selectRole(t, fleet, schema.RoleSource)
	dst := selectRole(t, fleet, schema.RoleDestination)
	tests := []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"phases-pages.dtrace", func(b *bytes.Buffer) error { return render.Phases(b, src[:1], render.FormatDTrace) }},
		{"phases-multi.dtrace", func(b *bytes.Buffer) error { return render.Phases(b, fleet[:3], render.FormatDTrace) }},
		{"phases.table", func(b *bytes.Buffer) error { return render.Phases(b, src[:1], render.FormatTable) }},
		{"phases.json", func(b *bytes.Buffer) error { return render.Phases(b, src[:1], render.FormatJSON) }},
		{"phases.csv", func(b *bytes.Buffer) error { return render.Phases(b, fleet[:2], render.FormatCSV) }},
		{"adjustments-multi.dtrace", func(b *bytes.Buffer) error { return render.Adjustments(b, dst[:2], render.FormatDTrace) }},
		{"adjustments.table", func(b *bytes.Buffer) error {
			return render.Adjustments(b, selectRole(t, seed, schema.RoleDestination), render.FormatTable)
		}},
		{"adjustments.json", func(b *bytes.Buffer) error {
			return render.Adjustments(b, selectRole(t, seed, schema.RoleDestination), render.FormatJSON)
		}},
		{"adjustments.csv", func(b *bytes.Buffer) error {
			return render.Adjustments(b, selectRole(t, seed, schema.RoleDestination), render.FormatCSV)
		}},
		{"summary.table", func(b *bytes.Buffer) error { return render.Summary(b, report.Summarize(fleet), render.FormatTable) }},
		{"summary.json", func(b *bytes.Buffer) error { return render.Summary(b, report.Summarize(fleet), render.FormatJSON) }},
		{"summary.csv", func(b *bytes.Buffer) error { return render.Summary(b, report.Summarize(fleet), render.FormatCSV) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.render(&buf); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(testdata, "render", tt.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			compareFile(t, path, buf.Bytes())
		})
	}
}

func compareFile(t *testing.T, path string, got []byte) {
	t.Helper()
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}
