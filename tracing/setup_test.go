package tracing

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/tracing/schema"
)

// otelEnv lists every variable Setup or the exporters it builds read, so a
// test can start from a clean environment whatever the developer's shell has.
var otelEnv = []string{
	EnvTracesExporter, EnvMetricsExporter, EnvOTLPEndpoint, EnvOTLPTracesEndpoint, EnvOTLPProtocol,
	EnvServiceName, EnvResourceAttributes, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_TRACES_SAMPLER",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_INSECURE",
}

func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, k := range otelEnv {
		t.Setenv(k, "")
	}
}

// emitSpans starts n spans across a few goroutines, each a child of one
// root, and ends them; it returns the root's trace ID.
func emitSpans(tr trace.Tracer, n int) trace.TraceID {
	ctx, root := tr.Start(context.Background(), schema.SpanMigration)
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n-1; i += workers {
				_, s := tr.Start(ctx, schema.PhaseSpanName(schema.Phases[i%len(schema.Phases)]))
				s.End()
			}
		})
	}
	wg.Wait()
	root.End()
	return root.SpanContext().TraceID()
}

func countFileSpans(t *testing.T, path string) (int, []ptrace.Traces) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := readTraceLines(t, data)
	n := 0
	for _, td := range lines {
		n += td.SpanCount()
	}
	return n, lines
}

func TestSetupTraceFileLosesNothingAtShutdown(t *testing.T) {
	clearOTelEnv(t)
	// More spans than the batch processor's queue (2048) and many batches
	// (512 each): everything must still reach the file.
	for _, n := range []int{1, 13, 5000} {
		path := filepath.Join(t.TempDir(), "trace.jsonl")
		tel, err := Setup(context.Background(), Config{ServiceName: "count", TraceFile: path})
		if err != nil {
			t.Fatal(err)
		}
		emitSpans(tel.Tracer(), n)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := tel.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		cancel()
		got, lines := countFileSpans(t, path)
		if got != n {
			t.Errorf("%d spans: file holds %d", n, got)
		}
		svc, _ := lines[0].ResourceSpans().At(0).Resource().Attributes().Get("service.name")
		if svc.Str() != "count" {
			t.Errorf("service.name %q, want count", svc.Str())
		}
	}
}

// otlpSink is an OTLP/HTTP traces endpoint that keeps what it receives.
type otlpSink struct {
	mu     sync.Mutex
	traces []ptrace.Traces
}

func (s *otlpSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.traces = append(s.traces, req.Traces())
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	resp, _ := ptraceotlp.NewExportResponse().MarshalProto()
	_, _ = w.Write(resp)
}

func (s *otlpSink) spans() (int, []ptrace.Traces) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, td := range s.traces {
		n += td.SpanCount()
	}
	return n, append([]ptrace.Traces(nil), s.traces...)
}

func TestSetupEnvExportsOTLPAndResource(t *testing.T) {
	clearOTelEnv(t)
	sink := &otlpSink{}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	t.Setenv(EnvOTLPEndpoint, srv.URL)
	t.Setenv(EnvServiceName, "from-env")
	t.Setenv(EnvResourceAttributes, schema.AttrInstance+"=env-vm,deployment.environment=test")

	tel, err := Setup(context.Background(), Config{
		ServiceName: "from-config",
		Attributes: []attribute.KeyValue{
			attribute.String(schema.AttrInstance, "config-vm"),
			attribute.String(schema.AttrBackend, "sim"),
		},
		Env: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1500
	emitSpans(tel.Tracer(), n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tel.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	got, tds := sink.spans()
	if got != n {
		t.Fatalf("collector received %d spans, want %d", got, n)
	}
	attrs := tds[0].ResourceSpans().At(0).Resource().Attributes()
	want := map[string]string{
		"service.name":           "from-env", // OTEL_SERVICE_NAME wins
		schema.AttrInstance:      "env-vm",   // the environment overrides config
		schema.AttrBackend:       "sim",      // config survives where env is silent
		"deployment.environment": "test",
	}
	for k, v := range want {
		got, ok := attrs.Get(k)
		if !ok || got.Str() != v {
			t.Errorf("resource %s = %q, want %q", k, got.AsString(), v)
		}
	}
}

func TestEnvSpanExporterSelection(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    bool // an exporter is created
		wantErr bool
	}{
		{name: "nothing set: no network", env: nil},
		{name: "exporter none", env: map[string]string{EnvTracesExporter: "none", EnvOTLPEndpoint: "http://127.0.0.1:1"}},
		{name: "generic endpoint", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:1"}, want: true},
		{name: "traces endpoint", env: map[string]string{EnvOTLPTracesEndpoint: "http://127.0.0.1:1/v1/traces"}, want: true},
		{name: "explicit otlp", env: map[string]string{EnvTracesExporter: "otlp"}, want: true},
		{name: "grpc", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:1", EnvOTLPProtocol: "grpc"}, want: true},
		{name: "console", env: map[string]string{EnvTracesExporter: "console"}, want: true},
		{name: "unsupported protocol", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:1", EnvOTLPProtocol: "http/json"}, wantErr: true},
		{name: "unknown exporter", env: map[string]string{EnvTracesExporter: "zipkin-ish"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			exp, err := envSpanExporter(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if (exp != nil) != tc.want {
				t.Errorf("exporter %T, want one: %v", exp, tc.want)
			}
			if exp != nil {
				_ = exp.Shutdown(context.Background())
			}
			// Setup must agree and fail the same way.
			tel, err := Setup(context.Background(), Config{Env: true})
			if (err != nil) != tc.wantErr {
				t.Fatalf("Setup error %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				_ = tel.Shutdown(ctx) // unreachable endpoints may time out; that is not under test
			}
		})
	}
}

func TestSetupErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		cfg  Config
	}{
		{"trace file in missing directory", nil, Config{TraceFile: filepath.Join(t.TempDir(), "no", "t.jsonl")}},
		{"malformed resource attributes", map[string]string{EnvResourceAttributes: "novalue"}, Config{Env: true}},
		{"unknown metrics exporter", map[string]string{EnvMetricsExporter: "carrier-pigeon"}, Config{Env: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tel, err := Setup(context.Background(), tc.cfg)
			if err == nil {
				_ = tel.Shutdown(context.Background())
				t.Fatal("Setup succeeded")
			}
		})
	}
}

type failingProcessor struct {
	sdktrace.SpanProcessor
	err error
}

func (p failingProcessor) Shutdown(context.Context) error { return p.err }

func TestShutdownJoinsErrorsAndIsIdempotent(t *testing.T) {
	clearOTelEnv(t)
	errA := errors.New("processor A failed")
	path := filepath.Join(t.TempDir(), "t.jsonl")
	tel, err := Setup(context.Background(), Config{
		TraceFile:      path,
		SpanProcessors: []sdktrace.SpanProcessor{failingProcessor{sdktrace.NewSimpleSpanProcessor(NewFileExporter(io.Discard)), errA}},
	})
	if err != nil {
		t.Fatal(err)
	}
	emitSpans(tel.Tracer(), 3)
	err = tel.Shutdown(context.Background())
	if !errors.Is(err, errA) {
		t.Fatalf("Shutdown error %v, want it to wrap %v", err, errA)
	}
	if again := tel.Shutdown(context.Background()); !errors.Is(again, errA) {
		t.Errorf("second Shutdown returned %v, want the first result", again)
	}
	// The failing processor must not have kept the file from being written.
	if got, _ := countFileSpans(t, path); got != 3 {
		t.Errorf("file holds %d spans, want 3", got)
	}
	// Spans after Shutdown are dropped quietly, not written or panicking.
	emitSpans(tel.Tracer(), 2)
	if got, _ := countFileSpans(t, path); got != 3 {
		t.Errorf("file holds %d spans after late spans, want 3", got)
	}
}

func TestNilAndNoopTelemetry(t *testing.T) {
	for name, tel := range map[string]*Telemetry{"nil": nil, "noop": NewNoop()} {
		t.Run(name, func(t *testing.T) {
			ctx, span := tel.Tracer().Start(context.Background(), schema.SpanMigration)
			if span.IsRecording() {
				t.Error("no-op tracer records")
			}
			span.End()
			if tp, tstate := Inject(ctx); tp != "" || tstate != "" {
				t.Errorf("Inject = %q %q, want empty", tp, tstate)
			}
			if tel.TracerProvider() == nil || tel.MeterProvider() == nil {
				t.Fatal("nil provider")
			}
			in := tel.Instruments()
			in.PhaseDone(ctx, schema.RoleSource, schema.PhaseSync, time.Millisecond, false)
			in.MigrationDone(ctx, schema.RoleSource, schema.ResultSuccess)
			rr := httptest.NewRecorder()
			tel.MetricsHandler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
			if rr.Code != http.StatusNotFound {
				t.Errorf("MetricsHandler status %d, want 404", rr.Code)
			}
			if err := tel.ForceFlush(ctx); err != nil {
				t.Error(err)
			}
			if err := tel.Shutdown(ctx); err != nil {
				t.Error(err)
			}
		})
	}
}
