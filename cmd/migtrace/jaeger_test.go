package main

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/tracingtest"
)

// A demo exporting OTLP to a real Jaeger shows up there as one trace that
// holds both hosts: every phase span of each side, with its monotonic
// begin and end, and the destination's time-data, clock-offset, blackout
// and continuity events with their attributes.
func TestDemoTraceInJaeger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Jaeger")
	}
	endpoint, query := tracingtest.StartJaeger(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	file := filepath.Join(t.TempDir(), "demo.jsonl")
	if out, errOut, code := run(t, "demo", "--memory", "16MiB", "--dirty-rate", "4MiB", "--warmup", "50ms", "--trace-file", file); code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	id := traceIDOf(t, file)
	td := tracingtest.FetchTrace(t, query, id, 2+9+8, 30*time.Second)

	phases := map[schema.Role]map[string]bool{schema.RoleSource: {}, schema.RoleDestination: {}}
	events := map[string]int{}
	stages := map[string]bool{}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				if got := trace.TraceID(sp.TraceID()); got != id {
					t.Errorf("span %s in trace %s, want %s", sp.Name(), got, id)
				}
				attrs := sp.Attributes()
				roleV, _ := attrs.Get(schema.AttrRole)
				role, err := schema.ParseRole(roleV.Str())
				if err != nil {
					t.Errorf("span %s: %v", sp.Name(), err)
					continue
				}
				if sp.Name() == schema.SpanMigration {
					continue
				}
				phases[role][sp.Name()] = true
				for _, k := range []string{schema.AttrPhaseBeginNs, schema.AttrPhaseEndNs, schema.AttrMigrationID} {
					if _, ok := attrs.Get(k); !ok {
						t.Errorf("%s span %s lacks %s", role, sp.Name(), k)
					}
				}
				evs := sp.Events()
				for e := 0; e < evs.Len(); e++ {
					ev := evs.At(e)
					events[ev.Name()]++
					if ev.Name() != schema.EventTimeDataStage {
						continue
					}
					st, _ := ev.Attributes().Get(schema.AttrTimeStage)
					stages[st.Str()] = true
					tsc, _ := ev.Attributes().Get(schema.AttrGuestTSC)
					boot, _ := ev.Attributes().Get(schema.AttrBootHrtime)
					if tsc.Str() == "" || boot.Int() == 0 {
						t.Errorf("stage %s: guest TSC %q, boot_hrtime %d", st.Str(), tsc.Str(), boot.Int())
					}
				}
			}
		}
	}
	for _, role := range []schema.Role{schema.RoleSource, schema.RoleDestination} {
		for _, p := range schema.Phases {
			if p.Runs(role) != phases[role][p.String()] {
				t.Errorf("%s: phase span %s present %v, want %v", role, p, phases[role][p.String()], p.Runs(role))
			}
		}
	}
	for _, s := range schema.Stages {
		if !stages[s.String()] {
			t.Errorf("no %s time-data stage event", s)
		}
	}
	for _, name := range []string{schema.EventClockOffset, schema.EventBlackout, schema.EventContinuity, schema.EventPrecopyRound} {
		if events[name] == 0 {
			t.Errorf("no %s event in Jaeger", name)
		}
	}
}

// traceIDOf returns the trace id the spans in an OTLP JSON Lines file share.
func traceIDOf(t *testing.T, path string) trace.TraceID {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	var id trace.TraceID
	for sc.Scan() {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				spans := sss.At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					got := trace.TraceID(spans.At(k).TraceID())
					if id.IsValid() && got != id {
						t.Fatalf("the demo's spans are in two traces: %s and %s", id, got)
					}
					id = got
				}
			}
		}
	}
	if !id.IsValid() {
		t.Fatal("no spans in the trace file")
	}
	return id
}
