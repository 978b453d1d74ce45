package events_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/probes/events"
	"github.com/migtrace/migtrace/probes/probetest"
	"github.com/migtrace/migtrace/probes/uprobe"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// records turns probe calls into the records a tracer would deliver, one
// microsecond apart, from one thread of process pid.
func records(pid uint32, ts0 uint64, calls []probetest.Call) []uprobe.Record {
	out := make([]uprobe.Record, len(calls))
	for i, c := range calls {
		out[i] = uprobe.Record{Timestamp: ts0 + uint64(i)*1000, PID: pid, TID: pid, Cookie: uint64(c.ID), Args: c.Args}
	}
	return out
}

// build decodes records and returns the migrations they finish.
func build(t *testing.T, recs []uprobe.Record) []*events.Migration {
	t.Helper()
	b := events.NewBuilder()
	var done []*events.Migration
	for _, r := range recs {
		e, err := events.Decode(r)
		if err != nil {
			t.Fatal(err)
		}
		if m := b.Add(e); m != nil {
			done = append(done, m)
		}
	}
	if b.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", b.Dropped())
	}
	return done
}

// readBack runs traces through report's OTLP reader, as `trace` does.
func readBack(t *testing.T, tds ...ptrace.Traces) []model.Side {
	t.Helper()
	var buf bytes.Buffer
	var mar ptrace.JSONMarshaler
	for _, td := range tds {
		b, err := mar.MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	r := otlpread.New()
	if err := r.Read(context.Background(), &buf, "probes"); err != nil {
		t.Fatal(err)
	}
	ms, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestSeedTables feeds the seed migration through Decode, Builder, Traces
// and report, and checks the D-script tables against the seed's captures.
func TestSeedTables(t *testing.T) {
	recs := append(records(100, 1_000_000, probetest.SeedSource()),
		records(200, 9_000_000, probetest.SeedDestination())...)
	ms := build(t, recs)
	if len(ms) != 2 {
		t.Fatalf("got %d migrations, want 2", len(ms))
	}
	src, dst := ms[0], ms[1]
	if src.RoleValue() != schema.RoleSource || dst.RoleValue() != schema.RoleDestination {
		t.Fatalf("roles %v, %v", src.Role, dst.Role)
	}
	if src.ID.String() != probetest.SeedMigrationID {
		t.Errorf("ID = %s, want %s", src.ID, probetest.SeedMigrationID)
	}
	read := readBack(t, src.Traces(0), dst.Traces(0))
	var rsrc, rdst model.Side
	for _, m := range read {
		if m.Role == schema.RoleSource {
			rsrc = m
		} else {
			rdst = m
		}
	}
	if rsrc.Result != schema.ResultSuccess || rsrc.TraceID == "" {
		t.Errorf("source root: result %q trace %q", rsrc.Result, rsrc.TraceID)
	}

	var phases bytes.Buffer
	if err := render.Phases(&phases, []model.Side{rsrc}, render.FormatDTrace); err != nil {
		t.Fatal(err)
	}
	golden(t, "source-phases.dtrace", phases.Bytes())
	seed, err := os.ReadFile("testdata/seed-phases.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(phases.String(), string(seed)) {
		t.Errorf("phases table does not contain the seed capture:\n%s", phases.String())
	}

	var dstPhases bytes.Buffer
	if err := render.Phases(&dstPhases, []model.Side{rdst}, render.FormatDTrace); err != nil {
		t.Fatal(err)
	}
	golden(t, "destination-phases.dtrace", dstPhases.Bytes())

	var adj bytes.Buffer
	if err := render.Adjustments(&adj, []model.Side{rdst}, render.FormatDTrace); err != nil {
		t.Fatal(err)
	}
	golden(t, "destination-adjustments.dtrace", adj.Bytes())
	seedAdj, err := os.ReadFile("testdata/seed-adjustments.txt")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(adj.String(), string(seedAdj)) {
		t.Errorf("adjustments table does not contain the seed capture:\n%s", adj.String())
	}
}
