package main

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/tracing/schema"
)

// jsonDocument is what migrate -o json prints.
type jsonDocument struct {
	migrationOutcome
	Phases      []render.PhaseTable      `json:"phase_tables"`
	Adjustments []render.AdjustmentTable `json:"adjustment_tables"`
}

// decodeOne decodes exactly one JSON document from out, failing the test
// if there is anything after it.
func decodeOne(t *testing.T, out string) jsonDocument {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	var doc jsonDocument
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not a JSON document: %v\n%s", err, out)
	}
	var more json.RawMessage
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		t.Fatalf("stdout holds more than one JSON document (next: %.80s, %v):\n%s", more, err, out)
	}
	return doc
}

// migrate -o json prints exactly one JSON document on stdout, whatever
// the outcome; progress goes to stderr. Before, a migration printed its
// phase tables and its adjustment table as two documents.
func TestMigrateJSONIsOneDocument(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	src, _ := serveProcess(t, "--boot", "--memory", "16MiB", "--dirty-rate", "4MiB", "--name", "src")
	dst, _ := serveProcess(t, "--name", "dst")
	empty, _ := serveProcess(t, "--name", "empty")

	out, errOut, code := run(t, "migrate", "--from", src, "--to", dst, "-o", "json")
	if code != 0 {
		t.Fatalf("migrate: exit %d\n%s\n%s", code, out, errOut)
	}
	doc := decodeOne(t, out)
	if doc.Result != schema.ResultSuccess || doc.ID == "" || doc.Error != "" || doc.VMRunsOn != dst {
		t.Errorf("outcome %+v, want success with the VM on %s", doc.migrationOutcome, dst)
	}
	if len(doc.Phases) != 2 || doc.Phases[0].Role != "source" || doc.Phases[1].Role != "destination" || len(doc.Adjustments) != 1 {
		t.Errorf("%d phase tables, %d adjustment tables; want both sides' and the destination's", len(doc.Phases), len(doc.Adjustments))
	}
	if !strings.Contains(errOut, "success") {
		t.Errorf("progress is not on stderr:\n%s", errOut)
	}

	// A failed migration is one document too, and the error also goes to
	// stderr.
	out, errOut, code = run(t, "migrate", "--from", empty, "--to", src, "-o", "json")
	if code != exitFailure {
		t.Fatalf("migrate from a server with no VM: exit %d\n%s\n%s", code, out, errOut)
	}
	doc = decodeOne(t, out)
	if doc.Result != schema.ResultFailure || doc.ErrorPhase != "Sync" || !strings.Contains(doc.Error, "no VM to migrate") || doc.VMRunsOn != "" {
		t.Errorf("outcome %+v, want a failure in Sync with the VM nowhere confirmed", doc.migrationOutcome)
	}
	if !strings.Contains(errOut, "no VM to migrate") {
		t.Errorf("stderr lacks the error:\n%s", errOut)
	}
}
