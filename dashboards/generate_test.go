package dashboards

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/tracing"
)

var update = flag.Bool("update", false, "rewrite the committed dashboards and provisioning files")

// TestCommittedFilesMatchGenerator is the drift check: the JSON and YAML
// in this directory must be exactly what Generate produces.
func TestCommittedFilesMatchGenerator(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := Write(".", files); err != nil {
			t.Fatal(err)
		}
	}
	generated := map[string]bool{}
	for _, f := range files {
		generated[f.Path] = true
		got, err := os.ReadFile(filepath.FromSlash(f.Path))
		if err != nil {
			t.Errorf("%s: %v; run make generate", f.Path, err)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s differs from what the generator produces; run make generate (or go test ./dashboards -update)", f.Path)
		}
	}
	// A dashboard the generator no longer makes would linger in Grafana.
	for _, pattern := range []string{"*.json", "provisioning/*/*.yaml"} {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			if !generated[filepath.ToSlash(m)] {
				t.Errorf("%s is not produced by the generator; delete it or run make generate", m)
			}
		}
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(a, b, func(x, y File) bool { return x.Path == y.Path && bytes.Equal(x.Data, y.Data) }) {
		t.Error("two runs of Generate differ")
	}
}

// TestEveryMetricIsCharted: each metric tracing publishes appears in some
// panel, so a new metric cannot go unnoticed by the dashboards.
func TestEveryMetricIsCharted(t *testing.T) {
	queries := generatedQueries(t)
	for _, m := range tracing.Metrics() {
		name, err := m.PrometheusName()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(queries, func(q Query) bool { return q.Variable == "" && strings.Contains(q.Expr, name) }) {
			t.Errorf("metric %s (%s) is in no panel", m.Name, name)
		}
	}
}

func TestPanelsHaveUniqueIDsAndTitles(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Ext(f.Path) != ".json" {
			continue
		}
		d := decodeDashboard(t, f)
		ids := map[float64]bool{}
		for _, p := range d.Panels {
			if p.ID == 0 || ids[p.ID] {
				t.Errorf("%s: panel %q has id %v, missing or repeated", f.Path, p.Title, p.ID)
			}
			ids[p.ID] = true
			if p.Title == "" {
				t.Errorf("%s: panel %v has no title", f.Path, p.ID)
			}
			if p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: panel %q overflows the 24-column grid: %+v", f.Path, p.Title, p.GridPos)
			}
		}
		if d.SchemaVersion == 0 || d.UID == "" {
			t.Errorf("%s: uid %q, schemaVersion %d", f.Path, d.UID, d.SchemaVersion)
		}
	}
}

// TestDatasourcesAreTemplated: no panel, target or variable names a
// datasource uid; all go through a datasource variable.
func TestDatasourcesAreTemplated(t *testing.T) {
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Ext(f.Path) != ".json" {
			continue
		}
		for _, uid := range []string{PrometheusDatasourceUID, JaegerDatasourceUID} {
			if bytes.Contains(f.Data, []byte(uid)) {
				t.Errorf("%s names datasource uid %s; use the datasource variable", f.Path, uid)
			}
		}
		if n := bytes.Count(f.Data, []byte(`"uid": "${`)); n == 0 {
			t.Errorf("%s has no templated datasource", f.Path)
		}
	}
}

type testDashboard struct {
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []struct {
		ID      float64 `json:"id"`
		Title   string  `json:"title"`
		GridPos struct{ X, W int }
	} `json:"panels"`
}
