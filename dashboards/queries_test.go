package dashboards

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func decodeDashboard(t *testing.T, f File) testDashboard {
	t.Helper()
	var d testDashboard
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("%s: %v", f.Path, err)
	}
	return d
}

// generatedQueries is every Prometheus query of every generated dashboard.
func generatedQueries(t *testing.T) []Query {
	t.Helper()
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	var all []Query
	for _, f := range files {
		if filepath.Ext(f.Path) != ".json" {
			continue
		}
		qs, err := PrometheusQueries(f.Data)
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		all = append(all, qs...)
	}
	return all
}

func TestPrometheusQueries(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    []Query
		wantErr error
	}{
		{
			name: "target datasource, panel datasource, other datasource skipped",
			json: `{"title":"D","panels":[
				{"title":"P","targets":[{"refId":"A","datasource":{"type":"prometheus"},"expr":"up"}]},
				{"title":"Q","datasource":{"type":"prometheus"},"targets":[{"refId":"B","expr":"x","instant":true}]},
				{"title":"J","datasource":{"type":"jaeger"},"targets":[{"refId":"A","query":"abc"}]}]}`,
			want: []Query{
				{Dashboard: "D", Panel: "P", RefID: "A", Expr: "up"},
				{Dashboard: "D", Panel: "Q", RefID: "B", Expr: "x", Instant: true},
			},
		},
		{
			name: "collapsed row panels and variables in both forms",
			json: `{"title":"D","panels":[{"type":"row","title":"R","panels":[
				{"title":"In row","targets":[{"refId":"A","datasource":{"type":"prometheus"},"expr":"a"}]}]}],
				"templating":{"list":[
				{"type":"query","name":"v","datasource":{"type":"prometheus"},"query":"label_values(a, b)"},
				{"type":"query","name":"w","datasource":{"type":"prometheus"},"query":{"query":"label_values(c)"}},
				{"type":"datasource","name":"datasource","query":"prometheus"}]}}`,
			want: []Query{
				{Dashboard: "D", Panel: "In row", RefID: "A", Expr: "a"},
				{Dashboard: "D", Variable: "v", Expr: "label_values(a, b)"},
				{Dashboard: "D", Variable: "w", Expr: "label_values(c)"},
			},
		},
		{
			name:    "prometheus target without expr",
			json:    `{"title":"D","panels":[{"title":"P","targets":[{"refId":"A","datasource":{"type":"prometheus"}}]}]}`,
			wantErr: ErrNoExpr,
		},
		{name: "not JSON", json: `{"title":`, wantErr: errSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PrometheusQueries([]byte(tt.json))
			if tt.wantErr != nil {
				var syn *json.SyntaxError
				if !errors.Is(err, tt.wantErr) && (tt.wantErr != errSyntax || !errors.As(err, &syn)) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("query %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// errSyntax stands for any *json.SyntaxError in the table above.
var errSyntax = errors.New("JSON syntax error")

func FuzzPrometheusQueries(f *testing.F) {
	// A small seed with every shape the decoder handles: seeding with the
	// generated dashboards (tens of kB each) made each mutation and
	// minimization so slow that a 10 s run did a few dozen execs.
	f.Add([]byte(`{"title":"D","panels":[{"type":"row","title":"R","panels":[{"title":"P","targets":[
		{"refId":"A","datasource":{"type":"prometheus","uid":"${datasource}"},"expr":"sum by (le) (rate(x_bucket[$__rate_interval]))","instant":true}]}]},
		{"title":"J","datasource":{"type":"jaeger"},"targets":[{"refId":"A","queryType":"search","service":"migtrace"}]}],
		"templating":{"list":[{"type":"query","name":"role","datasource":{"type":"prometheus"},"query":"label_values(x_count, role)"}]}}`))
	f.Add([]byte(`{"panels":[{"panels":[{"targets":[{"datasource":{"type":"prometheus"}}]}]}]}`))
	f.Add([]byte(`{"templating":{"list":[{"type":"query","datasource":{"type":"prometheus"},"query":7}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		qs, err := PrometheusQueries(data)
		if err != nil {
			return
		}
		for _, q := range qs {
			if q.Expr == "" {
				t.Fatalf("%s: empty expression returned without error", q.Where())
			}
		}
	})
}

// Grafana's values for its macros when the test evaluates a query: the
// windows hold at least four 1 s scrapes, and the range covers the test.
var macroValues = map[string]string{
	"$__rate_interval": "1m",
	"$__range":         "10m",
	"$__interval":      "15s",
}

var variableRef = regexp.MustCompile(`\$\{?(\w+)\}?`)

// expandForPrometheus replaces Grafana macros and dashboard variables in
// expr as Grafana would with every variable at All.
func expandForPrometheus(expr string, allValues map[string]string) (string, error) {
	var unknown []string
	out := variableRef.ReplaceAllStringFunc(expr, func(ref string) string {
		name := strings.Trim(ref, "${}")
		if v, ok := macroValues["$"+name]; ok {
			return v
		}
		if v, ok := allValues[name]; ok {
			return v
		}
		unknown = append(unknown, ref)
		return ref
	})
	if len(unknown) > 0 {
		return "", errors.New("unknown Grafana variables " + strings.Join(unknown, ", "))
	}
	return out, nil
}

func TestExpandForPrometheus(t *testing.T) {
	all := map[string]string{"role": ".*"}
	tests := []struct{ in, want, err string }{
		{`rate(x{r=~"$role"}[$__rate_interval])`, `rate(x{r=~".*"}[1m])`, ""},
		{`increase(x[${__range}])`, `increase(x[10m])`, ""},
		{`x{p=~"$phase"}`, "", "$phase"},
		{`up`, `up`, ""},
	}
	for _, tt := range tests {
		got, err := expandForPrometheus(tt.in, all)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want one naming %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
