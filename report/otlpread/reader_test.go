package otlpread_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

func jsonl(t testing.TB, ms ...model.Side) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, m := range ms {
		if err := reporttest.WriteJSONL(&buf, reporttest.Traces(m)); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func read(t testing.TB, data []byte, opts ...otlpread.Option) ([]model.Side, error) {
	t.Helper()
	r := otlpread.New(opts...)
	if err := r.Read(context.Background(), bytes.NewReader(data), "trace.jsonl"); err != nil {
		return nil, err
	}
	return r.Migrations()
}

// TestRoundTrip writes migrations as spans and reads them back unchanged.
// It runs with one and with several decoders, which must agree.
func TestRoundTrip(t *testing.T) {
	for _, decoders := range []int{1, 4} {
		t.Run(fmt.Sprintf("%d decoders", decoders), func(t *testing.T) {
			testRoundTrip(t, otlpread.WithDecoders(decoders))
		})
	}
}

func testRoundTrip(t *testing.T, opts ...otlpread.Option) {
	want := append([]model.Side{reporttest.SeedSource(), reporttest.SeedDestination()}, reporttest.Fleet(30, 1)...)
	got, err := read(t, jsonl(t, want...), opts...)
	if err != nil {
		t.Fatal(err)
	}
	model.SortByStart(want)
	if len(got) != len(want) {
		t.Fatalf("read %d sides, want %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		w.TraceID = reporttest.TraceID(w.ID).String()
		if !reflect.DeepEqual(got[i], w) {
			t.Errorf("side %d:\n got %+v\nwant %+v", i, got[i], w)
		}
	}
}

// TestSpansInAnyOrder splits one side's spans over lines in reverse order
// (root first, phases backwards), as several exporters' batches can.
func TestSpansInAnyOrder(t *testing.T) {
	m := reporttest.SeedDestination()
	td := reporttest.Traces(m)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	var buf bytes.Buffer
	for i := spans.Len() - 1; i >= 0; i-- {
		one := reporttest.Traces()
		ss := one.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		spans.At(i).CopyTo(ss.AppendEmpty())
		if err := reporttest.WriteJSONL(&buf, one); err != nil {
			t.Fatal(err)
		}
		buf.WriteString("\n") // blank lines are allowed
	}
	got, err := read(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	m.TraceID = reporttest.TraceID(m.ID).String()
	if len(got) != 1 || !reflect.DeepEqual(got[0], m) {
		t.Fatalf("got %+v\nwant %+v", got, m)
	}
}

// TestMissingRootSpan keeps a side whose root span was lost, ordered by
// its first phase.
func TestMissingRootSpan(t *testing.T) {
	m := reporttest.SeedSource()
	td := reporttest.Traces(m)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	spans.RemoveIf(func(s ptrace.Span) bool { return s.Name() == schema.SpanMigration })
	var buf bytes.Buffer
	if err := reporttest.WriteJSONL(&buf, td); err != nil {
		t.Fatal(err)
	}
	got, err := read(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Result != "" || len(got[0].Phases) != len(m.Phases) || !got[0].StartTime.Equal(m.StartTime) {
		t.Fatalf("got %+v", got)
	}
}

func TestBadInput(t *testing.T) {
	good := jsonl(t, reporttest.SeedSource())
	foreign := strings.ReplaceAll(string(good), schema.AttrMigrationID, "other.id")
	badRole := strings.Replace(string(good), `"source"`, `"sideways"`, 1)
	badUint := strings.Replace(string(jsonl(t, reporttest.SeedDestination())), `"2649958945"`, `"-1"`, 1)
	tests := []struct {
		name     string
		input    string
		opts     []otlpread.Option
		wantErr  error
		wantLine int
		wantText string
	}{
		{"not JSON", "hello\n", nil, otlpread.ErrNotTraces, 1, "JSON object"},
		{"truncated line", string(good[:len(good)/2]), nil, otlpread.ErrNotJSON, 1, ""},
		{"truncated second line", string(good) + string(good[:100]), nil, otlpread.ErrNotJSON, 2, ""},
		{"first bad line wins with parallel decoders", string(good) + "x\n" + string(good) + "y\n", []otlpread.Option{otlpread.WithDecoders(4)}, otlpread.ErrNotTraces, 2, ""},
		{"JSON array", "[1,2]\n", nil, otlpread.ErrNotTraces, 1, ""},
		{"metrics file", `{"resourceMetrics":[{"scopeMetrics":[]}]}` + "\n", nil, otlpread.ErrNotTraces, 1, "metrics or logs"},
		{"wrong field type", `{"resourceSpans":"x"}` + "\n", nil, otlpread.ErrNotJSON, 1, ""},
		{"unknown role", badRole, nil, otlpread.ErrBadAttribute, 1, "sideways"},
		{"bad uint attribute", badUint, nil, otlpread.ErrBadAttribute, 1, schema.AttrGuestFreq},
		{"line too long", string(good), []otlpread.Option{otlpread.WithMaxLineBytes(1024)}, otlpread.ErrLineTooLong, 1, "1024 bytes"},
		{"no migtrace spans", foreign, nil, report.ErrNoMigrations, 0, "read 9 spans in 1 lines"},
		{"empty input", "", nil, report.ErrNoMigrations, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := read(t, []byte(tt.input), tt.opts...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var le *otlpread.LineError
			if tt.wantLine > 0 {
				if !errors.As(err, &le) || le.Line != tt.wantLine || le.Name != "trace.jsonl" {
					t.Fatalf("err = %v, want a LineError at trace.jsonl:%d", err, tt.wantLine)
				}
				if !strings.HasPrefix(err.Error(), fmt.Sprintf("trace.jsonl:%d: ", tt.wantLine)) {
					t.Errorf("message %q does not start with the location", err)
				}
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("err = %q, want it to mention %q", err, tt.wantText)
			}
		})
	}
}

func TestReadFileMissing(t *testing.T) {
	err := otlpread.New().ReadFile(context.Background(), filepath.Join(t.TempDir(), "nope.jsonl"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.jsonl") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := bytes.Repeat(jsonl(t, reporttest.SeedSource()), 300)
	err := otlpread.New().Read(ctx, bytes.NewReader(data), "x")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestLargeLine(t *testing.T) {
	// One line holding 2000 sides (~ several MB) must be read whole.
	ms := reporttest.Fleet(1000, 3)
	var buf bytes.Buffer
	if err := reporttest.WriteJSONL(&buf, reporttest.Traces(ms...)); err != nil {
		t.Fatal(err)
	}
	if buf.Len() < 4<<20 {
		t.Fatalf("test line only %d bytes", buf.Len())
	}
	got, err := read(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ms) {
		t.Fatalf("read %d sides, want %d", len(got), len(ms))
	}
}

func jaegerServer(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestReadJaeger(t *testing.T) {
	seed := reporttest.SeedDestination()
	traceID := reporttest.TraceID(seed.ID).String()
	body := jsonl(t, seed)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr error
		want    string
	}{
		{"ok", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/api/v3/traces/"+traceID {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintf(w, `{"result": %s}`, bytes.TrimSpace(body))
		}, nil, ""},
		{"two chunks", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "{\"result\": %s}\n{\"result\": %s}\n", bytes.TrimSpace(body), bytes.TrimSpace(body))
		}, nil, ""},
		{"404", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"httpCode":404,"message":"trace not found"}}`)
		}, otlpread.ErrTraceNotFound, "trace ID not found in Jaeger at http://"},
		{"error chunk", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"error":{"httpCode":404,"message":"trace not found"}}`)
		}, otlpread.ErrTraceNotFound, "not found"},
		{"500", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "storage down", http.StatusInternalServerError)
		}, nil, "500 Internal Server Error: storage down"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `<html>`)
		}, otlpread.ErrNotJSON, "/api/v3/traces/"},
		{"no result", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"data": []}`)
		}, otlpread.ErrNotTraces, "result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := jaegerServer(t, tt.handler)
			r := otlpread.New()
			err := r.ReadJaeger(context.Background(), url, traceID)
			if tt.want == "" && tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				ms, err := r.Migrations()
				if err != nil || len(ms) != 1 || !ms[0].HasTimeData() {
					t.Fatalf("migrations = %+v, %v", ms, err)
				}
				return
			}
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.wantErr, tt.want)
			}
		})
	}
}

func TestReadJaegerUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	err = otlpread.New().ReadJaeger(context.Background(), "http://"+addr, "0af7651916cd43dd8448eb211c80319c")
	if !errors.Is(err, otlpread.ErrJaegerUnreachable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
}

func TestReadJaegerBadArgs(t *testing.T) {
	for _, tt := range []struct{ url, id string }{
		{"http://localhost:16686", "xyz"},
		{"http://localhost:16686", strings.Repeat("a", 33)},
		{"localhost:16686", "abc"},
	} {
		if err := otlpread.New().ReadJaeger(context.Background(), tt.url, tt.id); err == nil {
			t.Errorf("ReadJaeger(%q, %q) succeeded", tt.url, tt.id)
		}
	}
}

func FuzzRead(f *testing.F) {
	good := jsonl(f, reporttest.SeedSource(), reporttest.SeedDestination())
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"migration","attributes":[{"key":"migration.id","value":{"stringValue":"x"}},{"key":"migration.role","value":{"stringValue":"source"}}]}]}]}]}`))
	f.Add([]byte("[]\n{}\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := otlpread.New(otlpread.WithMaxLineBytes(1 << 20))
		if err := r.Read(context.Background(), bytes.NewReader(data), "fuzz"); err != nil {
			return
		}
		ms, err := r.Migrations()
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.ID == "" || (m.Role != schema.RoleSource && m.Role != schema.RoleDestination) {
				t.Fatalf("reader produced an invalid side %+v", m)
			}
			for i := 1; i < len(m.Phases); i++ {
				if m.Phases[i-1].Phase >= m.Phases[i].Phase {
					t.Fatalf("phases out of order: %+v", m.Phases)
				}
			}
			report.Check([]model.Side{m}, report.Options{})
			report.Summarize([]model.Side{m})
		}
	})
}

// TestSourceReportedByDestination rebuilds the source's side from the
// destination's record of it when the source's own spans are absent, and
// prefers the source's own spans when present.
func TestSourceReportedByDestination(t *testing.T) {
	src, dst := reporttest.Fleet(1, 4)[0], reporttest.Fleet(1, 4)[1]
	dstOnly := reporttest.Traces(reporttest.WithSourceReport(dst, src))
	var buf bytes.Buffer
	if err := reporttest.WriteJSONL(&buf, dstOnly); err != nil {
		t.Fatal(err)
	}
	got, err := read(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d sides, want the destination and the reported source", len(got))
	}
	var rebuilt model.Side
	for _, m := range got {
		if m.Role == schema.RoleSource {
			rebuilt = m
		}
	}
	if !rebuilt.ReportedByPeer || rebuilt.DowntimeNs != src.DowntimeNs || len(rebuilt.Phases) != len(src.Phases) {
		t.Fatalf("rebuilt source = %+v", rebuilt)
	}
	for i, p := range rebuilt.Phases {
		w := src.Phases[i]
		if p.Phase != w.Phase || p.BeginNs != w.BeginNs || p.EndNs != w.EndNs || p.Bytes != w.Bytes || p.Pages != w.Pages {
			t.Errorf("phase %d = %+v, want %+v", i, p, w)
		}
	}

	// With the source's own spans in the input, they win.
	own := src
	own.Phases = append([]model.PhaseTiming(nil), src.Phases...)
	own.Phases[0].EndNs += 1000 // the source's view differs from the report
	if err := reporttest.WriteJSONL(&buf, reporttest.Traces(own)); err != nil {
		t.Fatal(err)
	}
	got, err = read(t, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d sides", len(got))
	}
	for _, m := range got {
		if m.Role == schema.RoleSource && (m.ReportedByPeer || m.Phases[0].EndNs != own.Phases[0].EndNs) {
			t.Errorf("source side did not come from its own spans: %+v", m)
		}
	}
}
