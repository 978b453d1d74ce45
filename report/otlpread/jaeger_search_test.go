package otlpread_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/reporttest"
)

// searchBody is a Jaeger search answer: one {"result": TracesData} with
// every side of the fleet's first n migrations, each side its own trace.
func searchBody(t *testing.T, n int) (body string, traces int) {
	t.Helper()
	fleet := reporttest.Fleet(n, 3)
	td := ptrace.NewTraces()
	for i, m := range fleet {
		one := reporttest.Traces(m)
		// The fleet's two sides share a trace id; give the destination
		// its own, as two serve processes without propagation record.
		if i%2 == 1 {
			id := reporttest.TraceID(m.ID + "-destination")
			for _, rs := range one.ResourceSpans().All() {
				for _, ss := range rs.ScopeSpans().All() {
					for _, sp := range ss.Spans().All() {
						sp.SetTraceID(id)
					}
				}
			}
		}
		one.ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	}
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"result":%s}`, b), 2 * n
}

func TestSearchJaeger(t *testing.T) {
	end := time.Date(2026, 11, 30, 12, 0, 0, 5, time.UTC)
	q := otlpread.SearchQuery{Service: "migtrace", Start: end.Add(-90 * time.Minute), End: end, Limit: 50}
	body, traces := searchBody(t, 3)
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantN     int
		wantErr   error
		want      string // in the error
		wantSides int
	}{
		{name: "traces", handler: func(w http.ResponseWriter, r *http.Request) {
			v := r.URL.Query()
			if r.URL.Path != "/api/v3/traces" || v.Get("query.service_name") != "migtrace" ||
				v.Get("query.start_time_min") != "2026-11-30T10:30:00.000000005Z" ||
				v.Get("query.start_time_max") != "2026-11-30T12:00:00.000000005Z" || v.Get("query.num_traces") != "50" {
				http.Error(w, "unexpected query "+r.URL.String(), http.StatusBadRequest)
				return
			}
			fmt.Fprint(w, body)
		}, wantN: traces, wantSides: 6},
		{name: "two chunks of the same traces", handler: func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, body+"\n"+body)
		}, wantN: traces, wantSides: 6},
		{name: "nothing in the window", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":{"httpCode":404,"message":"No traces found"}}`)
		}, wantErr: otlpread.ErrNoTracesFound, want: `for service "migtrace" from 2026-11-30T10:30:00Z to 2026-11-30T12:00:00Z`},
		{name: "empty answer", handler: func(w http.ResponseWriter, r *http.Request) {},
			wantErr: otlpread.ErrNoTracesFound, want: "no traces found in Jaeger at http://"},
		{name: "error chunk", handler: func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"error":{"httpCode":500,"message":"search depth must be greater than 0 and less than max traces"}}`)
		}, want: "search depth must be greater than 0 and less than max traces (HTTP 500)"},
		{name: "refused", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"error":{"httpCode":400,"message":"malformed parameter query.start_time_min"}}`, http.StatusBadRequest)
		}, want: "answered 400 Bad Request to the trace search: {\"error\""},
		{name: "not JSON", handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>") },
			wantErr: otlpread.ErrNotJSON, want: "/api/v3/traces?"},
		{name: "JSON but no traces", handler: func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"data":[]}`) },
			wantErr: otlpread.ErrNotTraces, want: `no "result" object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := jaegerServer(t, tt.handler)
			r := otlpread.New()
			n, err := r.SearchJaeger(context.Background(), url, q)
			if tt.want != "" || tt.wantErr != nil {
				if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v, want %v mentioning %q", err, tt.wantErr, tt.want)
				}
				return
			}
			if err != nil || n != tt.wantN {
				t.Fatalf("SearchJaeger = %d, %v; want %d traces", n, err, tt.wantN)
			}
			ms, err := r.Migrations()
			if err != nil || len(ms) != tt.wantSides {
				t.Fatalf("%d sides (%v), want %d", len(ms), err, tt.wantSides)
			}
		})
	}
}

func TestSearchJaegerBadQueries(t *testing.T) {
	end := time.Now()
	ok := otlpread.SearchQuery{Service: "migtrace", Start: end.Add(-time.Hour), End: end, Limit: 10}
	for _, tt := range []struct {
		name string
		url  string
		edit func(*otlpread.SearchQuery)
		want string
	}{
		{"no service", "http://127.0.0.1:1", func(q *otlpread.SearchQuery) { q.Service = "" }, "no service name"},
		{"window backwards", "http://127.0.0.1:1", func(q *otlpread.SearchQuery) { q.Start = q.End.Add(time.Second) }, "not before its end"},
		{"no limit", "http://127.0.0.1:1", func(q *otlpread.SearchQuery) { q.Limit = 0 }, "limit 0, want at least 1"},
		{"not a URL", "localhost:16686", func(*otlpread.SearchQuery) {}, `Jaeger URL "localhost:16686": want http://HOST:PORT`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := ok
			tt.edit(&q)
			if _, err := otlpread.New().SearchJaeger(context.Background(), tt.url, q); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSearchJaegerUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	end := time.Now()
	_, err = otlpread.New().SearchJaeger(context.Background(), "http://"+addr,
		otlpread.SearchQuery{Service: "migtrace", Start: end.Add(-time.Hour), End: end, Limit: 10})
	if !errors.Is(err, otlpread.ErrJaegerUnreachable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
}
