package reporttest_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/schema"
)

func TestFleetIsReproducibleAndConsistent(t *testing.T) {
	a, b := reporttest.Fleet(5, 42), reporttest.Fleet(5, 42)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Fleet is not deterministic for one seed")
	}
	for _, m := range a {
		for i, p := range m.Phases {
			if !p.Phase.Runs(m.Role) {
				t.Errorf("%s runs %s", m.Role, p.Phase)
			}
			if p.EndNs <= p.BeginNs || (i > 0 && p.BeginNs < m.Phases[i-1].EndNs) {
				t.Errorf("%s %s: phases overlap or run backwards: %+v", m.ID, m.Role, m.Phases)
			}
		}
	}
}

func TestWriteJSONLOneLinePerTraces(t *testing.T) {
	var buf bytes.Buffer
	src, dst := reporttest.SeedSource(), reporttest.SeedDestination()
	if err := reporttest.WriteJSONL(&buf, reporttest.Traces(src), reporttest.Traces(dst)); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != 2 {
		t.Fatalf("%d lines, want 2", n)
	}
	if !bytes.Contains(buf.Bytes(), []byte(schema.EventTimeDataStage)) {
		t.Error("destination's time-data events missing")
	}
	if reporttest.TraceID(src.ID) != reporttest.TraceID(dst.ID) {
		t.Error("the two sides must share a trace id")
	}
}
