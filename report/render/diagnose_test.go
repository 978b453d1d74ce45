package render_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// readTraces reads OTLP JSON Lines files the way `migtrace report` does.
func readTraces(t *testing.T, paths ...string) []model.Side {
	t.Helper()
	r := otlpread.New()
	for _, p := range paths {
		if err := r.ReadFile(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// hostFleet is three migrations between two host pairs: the second's
// source did not record its destination's name (the destination's own
// record names it), and the third's destination is not in the input.
func hostFleet() []model.Side {
	fleet := reporttest.Fleet(3, 11)
	names := [][2]string{{"host-a", "host-b"}, {"host-a", "host-b"}, {"host-c", "host-d"}}
	for i := range fleet {
		n := names[i/2]
		if fleet[i].Role == schema.RoleSource {
			fleet[i].Instance, fleet[i].PeerName = n[0], n[1]
		} else {
			fleet[i].Instance, fleet[i].PeerName = n[1], n[0]
		}
	}
	fleet[2].PeerName = ""
	fleet[4].PeerName = ""
	return fleet[:5]
}

// TestGoldenDiagnoseAndPairs pins diagnose's and the host-pair summary's
// formats (regenerate with -update after checking the change by eye):
// the loopback migration migrate recorded, its failed twin, and the seed
// (whose source records no rounds).
func TestGoldenDiagnoseAndPairs(t *testing.T) {
	otlp := filepath.Join("..", "otlpread", "testdata")
	ms := readTraces(t, filepath.Join(otlp, "migrate-sim.jsonl"), filepath.Join(otlp, "migrate-sim-failed.jsonl"))
	ms = append(ms, readBack(t, reporttest.SeedSource(), reporttest.SeedDestination())...)
	model.SortByStart(ms)
	ds := report.Diagnose(ms, report.DiagnoseOptions{})
	pairs := report.SummarizeByHostPair(readBack(t, hostFleet()...))
	tests := []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"diagnose.text", func(b *bytes.Buffer) error { return render.Diagnose(b, ds, render.FormatText) }},
		{"diagnose.json", func(b *bytes.Buffer) error { return render.Diagnose(b, ds, render.FormatJSON) }},
		{"summary-host-pair.table", func(b *bytes.Buffer) error { return render.SummaryByHostPair(b, pairs, render.FormatTable) }},
		{"summary-host-pair.json", func(b *bytes.Buffer) error { return render.SummaryByHostPair(b, pairs, render.FormatJSON) }},
		{"summary-host-pair.csv", func(b *bytes.Buffer) error { return render.SummaryByHostPair(b, pairs, render.FormatCSV) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.render(&buf); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(testdata, "render", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			compareFile(t, path, buf.Bytes())
		})
	}
}

func TestDiagnoseFormats(t *testing.T) {
	var buf bytes.Buffer
	if err := render.Diagnose(&buf, nil, render.FormatJSON); err != nil || buf.String() != "[]\n" {
		t.Errorf("no diagnoses as JSON: %q, %v", buf.String(), err)
	}
	for _, f := range []render.Format{render.FormatCSV, render.FormatTable, render.FormatDTrace} {
		if err := render.Diagnose(&buf, nil, f); !errors.Is(err, render.ErrUnsupportedFormat) {
			t.Errorf("format %s: %v, want ErrUnsupportedFormat", f, err)
		}
		if err := render.SummaryByHostPair(&buf, nil, render.FormatDTrace); !errors.Is(err, render.ErrUnsupportedFormat) {
			t.Errorf("summary by host pair, dtrace: %v", err)
		}
	}
}
