package tracing

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/tracing/schema"
)

const schemaDoc = "../docs/trace-schema.md"

// schemaConstants parses every non-test file of tracing/schema and returns
// its exported string constants, name -> value. Parsing (not a hand-kept
// list) means a name added in any schema file is checked without anyone
// remembering to list it.
func schemaConstants(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("schema/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	out := map[string]string{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !name.IsExported() || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						continue
					}
					v, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatalf("%s: %s: %v", fset.Position(lit.Pos()), name.Name, err)
					}
					out[name.Name] = v
				}
			}
		}
	}
	if len(out) < 50 {
		t.Fatalf("found only %d string constants in tracing/schema; is the parser looking in the right place?", len(out))
	}
	return out
}

func TestDocsCoverSchema(t *testing.T) {
	data, err := os.ReadFile(schemaDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	has := func(s string) bool { return strings.Contains(doc, "`"+s+"`") }

	for name, value := range schemaConstants(t) {
		if !has(value) {
			t.Errorf("%s: value %q (schema.%s) is not documented", schemaDoc, value, name)
		}
		if !has("schema." + name) {
			t.Errorf("%s: identifier schema.%s is not documented", schemaDoc, name)
		}
	}
	for _, p := range schema.Phases {
		if !has(p.String()) {
			t.Errorf("%s: phase span %q is not documented", schemaDoc, p)
		}
	}
	for _, s := range schema.Stages {
		if !has(s.String()) || !has(s.Label()) {
			t.Errorf("%s: stage %q (%q) is not documented", schemaDoc, s, s.Label())
		}
	}
	for _, r := range []schema.Role{schema.RoleSource, schema.RoleDestination} {
		if !has(r.String()) {
			t.Errorf("%s: role %q is not documented", schemaDoc, r)
		}
	}
	for _, m := range Metrics() {
		prom, err := m.PrometheusName()
		if err != nil {
			t.Fatal(err)
		}
		if !has(prom) {
			t.Errorf("%s: Prometheus name %q of %s is not documented", schemaDoc, prom, m.Name)
		}
		for _, key := range m.Attributes {
			l, err := PrometheusLabel(key)
			if err != nil {
				t.Fatal(err)
			}
			if !has(l) {
				t.Errorf("%s: Prometheus label %q is not documented", schemaDoc, l)
			}
		}
	}
	for _, env := range []string{EnvTracesExporter, EnvMetricsExporter, EnvOTLPEndpoint, EnvOTLPTracesEndpoint,
		EnvOTLPProtocol, EnvServiceName, EnvResourceAttributes} {
		if !has(env) {
			t.Errorf("%s: environment variable %s is not documented", schemaDoc, env)
		}
	}
}
