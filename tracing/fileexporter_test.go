package tracing

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// readTraceLines parses OTLP JSON Lines, failing the test on any bad line.
func readTraceLines(t testing.TB, data []byte) []ptrace.Traces {
	t.Helper()
	var out []ptrace.Traces
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 64<<20)
	var u ptrace.JSONUnmarshaler
	for n := 1; sc.Scan(); n++ {
		td, err := u.UnmarshalTraces(sc.Bytes())
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		out = append(out, td)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// exportedSpan is one span read back with the resource and scope it came in.
type exportedSpan struct {
	resource pcommon.Resource
	scope    pcommon.InstrumentationScope
	span     ptrace.Span
}

func flattenSpans(tds []ptrace.Traces) map[trace.SpanID]exportedSpan {
	out := make(map[trace.SpanID]exportedSpan)
	for _, td := range tds {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					out[trace.SpanID(s.SpanID())] = exportedSpan{rs.Resource(), ss.Scope(), s}
				}
			}
		}
	}
	return out
}

// allTypesAttributes has one attribute of every type OTel offers, with
// edge values (negative, max, empty, unicode).
func allTypesAttributes() []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Bool("t.bool", true),
		attribute.Int64("t.int", -9223372036854775808),
		attribute.Int64("t.int_max", 9223372036854775807),
		attribute.Float64("t.float", 2.5e-9),
		attribute.String("t.string", "Kernel ✓ \"quoted\"\n"),
		attribute.String("t.empty", ""),
		attribute.BoolSlice("t.bools", []bool{true, false}),
		attribute.Int64Slice("t.ints", []int64{1, -2, 1 << 62}),
		attribute.Float64Slice("t.floats", []float64{0.5, -1e300}),
		attribute.StringSlice("t.strings", []string{"a", ""}),
		attribute.ByteSlice("t.bytes", []byte{0, 1, 0xff}),
		attribute.Slice("t.mixed", attribute.StringValue("x"), attribute.Int64Value(7)),
		attribute.Map("t.map", attribute.Bool("inner", false), attribute.Float64("f", 1.25)),
		spancodec.Uint64(schema.AttrGuestTSC, 18446744073709551615),
	}
}

// recordSpans runs fn against a tracer provider exporting synchronously to
// both exp and a recorder, and returns what the SDK ended.
func recordSpans(t testing.TB, exp sdktrace.SpanExporter, res *resource.Resource, fn func(trace.Tracer)) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSpanProcessor(rec),
		sdktrace.WithSyncer(exp),
	)
	fn(tp.Tracer(schema.ScopeName, trace.WithInstrumentationVersion("v1.2.3"),
		trace.WithSchemaURL("https://example.test/schema"),
		trace.WithInstrumentationAttributes(attribute.String("scope.attr", "s"))))
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	return rec.Ended()
}

func TestFileExporterRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	res := resource.NewWithAttributes("https://example.test/res",
		attribute.String("service.name", "roundtrip"), attribute.Int64("res.n", 3))
	base := time.Date(2026, 11, 26, 6, 0, 0, 123456789, time.UTC)

	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{8, 7, 6, 5, 4, 3, 2, 1},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	ts, err := trace.ParseTraceState("vendor=a,other=b")
	if err != nil {
		t.Fatal(err)
	}
	remote = remote.WithTraceState(ts)

	ended := recordSpans(t, NewFileExporter(&buf), res, func(tr trace.Tracer) {
		ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
		ctx, root := tr.Start(ctx, schema.SpanMigration,
			trace.WithSpanKind(trace.SpanKindServer),
			trace.WithTimestamp(base),
			trace.WithAttributes(allTypesAttributes()...),
			trace.WithLinks(trace.Link{SpanContext: remote, Attributes: []attribute.KeyValue{attribute.String("link.attr", "l")}}))
		_, child := tr.Start(ctx, schema.PhaseSpanName(schema.PhaseTimeData),
			trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(base.Add(time.Millisecond)))
		child.AddEvent(schema.EventTimeDataStage, trace.WithTimestamp(base.Add(1500*time.Microsecond)),
			trace.WithAttributes(allTypesAttributes()...))
		child.AddEvent("bare", trace.WithTimestamp(base.Add(1600*time.Microsecond)))
		child.SetStatus(codes.Error, "time data rejected")
		child.End(trace.WithTimestamp(base.Add(2 * time.Millisecond)))
		_, okSpan := tr.Start(ctx, "ok", trace.WithSpanKind(trace.SpanKindProducer), trace.WithTimestamp(base))
		okSpan.SetStatus(codes.Ok, "")
		okSpan.End(trace.WithTimestamp(base.Add(time.Nanosecond)))
		_, consumer := tr.Start(ctx, "consumer", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(base))
		consumer.End(trace.WithTimestamp(base))
		root.End(trace.WithTimestamp(base.Add(3 * time.Millisecond)))
	})
	if len(ended) != 4 {
		t.Fatalf("recorded %d spans, want 4", len(ended))
	}

	lines := readTraceLines(t, buf.Bytes())
	if len(lines) != 4 { // a syncer exports one span per batch
		t.Fatalf("file has %d lines, want 4", len(lines))
	}
	got := flattenSpans(lines)
	if len(got) != len(ended) {
		t.Fatalf("file has %d spans, want %d", len(got), len(ended))
	}
	for _, want := range ended {
		g, ok := got[want.SpanContext().SpanID()]
		if !ok {
			t.Errorf("span %q missing from file", want.Name())
			continue
		}
		compareSpan(t, want, g)
	}
}

func compareSpan(t *testing.T, want sdktrace.ReadOnlySpan, g exportedSpan) {
	t.Helper()
	name := want.Name()
	compareAttrs(t, name+" resource", want.Resource().Attributes(), g.resource.Attributes())
	scope := want.InstrumentationScope()
	if g.scope.Name() != scope.Name || g.scope.Version() != scope.Version {
		t.Errorf("%s: scope %q %q, want %q %q", name, g.scope.Name(), g.scope.Version(), scope.Name, scope.Version)
	}
	compareAttrs(t, name+" scope", scope.Attributes.ToSlice(), g.scope.Attributes())

	s := g.span
	sc := want.SpanContext()
	if trace.TraceID(s.TraceID()) != sc.TraceID() {
		t.Errorf("%s: trace id %s, want %s", name, s.TraceID(), sc.TraceID())
	}
	if s.TraceState().AsRaw() != sc.TraceState().String() {
		t.Errorf("%s: tracestate %q, want %q", name, s.TraceState().AsRaw(), sc.TraceState().String())
	}
	wantParent := pcommon.NewSpanIDEmpty()
	if want.Parent().IsValid() {
		wantParent = pcommon.SpanID(want.Parent().SpanID())
	}
	if s.ParentSpanID() != wantParent {
		t.Errorf("%s: parent %s, want %s", name, s.ParentSpanID(), wantParent)
	}
	wantFlags := uint32(sc.TraceFlags()) | flagContextHasIsRemote
	if want.Parent().IsRemote() {
		wantFlags |= flagContextIsRemote
	}
	if s.Flags() != wantFlags {
		t.Errorf("%s: flags %#x, want %#x", name, s.Flags(), wantFlags)
	}
	if s.Name() != name {
		t.Errorf("name %q, want %q", s.Name(), name)
	}
	wantKinds := map[trace.SpanKind]ptrace.SpanKind{
		trace.SpanKindInternal: ptrace.SpanKindInternal, trace.SpanKindServer: ptrace.SpanKindServer,
		trace.SpanKindClient: ptrace.SpanKindClient, trace.SpanKindProducer: ptrace.SpanKindProducer,
		trace.SpanKindConsumer: ptrace.SpanKindConsumer,
	}
	if s.Kind() != wantKinds[want.SpanKind()] {
		t.Errorf("%s: kind %v, want %v", name, s.Kind(), want.SpanKind())
	}
	if !s.StartTimestamp().AsTime().Equal(want.StartTime()) || !s.EndTimestamp().AsTime().Equal(want.EndTime()) {
		t.Errorf("%s: times %v..%v, want %v..%v", name, s.StartTimestamp().AsTime(), s.EndTimestamp().AsTime(),
			want.StartTime(), want.EndTime())
	}
	compareAttrs(t, name, want.Attributes(), s.Attributes())

	if s.Events().Len() != len(want.Events()) {
		t.Fatalf("%s: %d events, want %d", name, s.Events().Len(), len(want.Events()))
	}
	for i, we := range want.Events() {
		ge := s.Events().At(i)
		if ge.Name() != we.Name || !ge.Timestamp().AsTime().Equal(we.Time) {
			t.Errorf("%s: event %d = %q at %v, want %q at %v", name, i, ge.Name(), ge.Timestamp().AsTime(), we.Name, we.Time)
		}
		compareAttrs(t, name+" event "+we.Name, we.Attributes, ge.Attributes())
	}

	if s.Links().Len() != len(want.Links()) {
		t.Fatalf("%s: %d links, want %d", name, s.Links().Len(), len(want.Links()))
	}
	for i, wl := range want.Links() {
		gl := s.Links().At(i)
		if trace.TraceID(gl.TraceID()) != wl.SpanContext.TraceID() || trace.SpanID(gl.SpanID()) != wl.SpanContext.SpanID() {
			t.Errorf("%s: link %d to %s/%s, want %s/%s", name, i, gl.TraceID(), gl.SpanID(),
				wl.SpanContext.TraceID(), wl.SpanContext.SpanID())
		}
		if gl.TraceState().AsRaw() != wl.SpanContext.TraceState().String() {
			t.Errorf("%s: link tracestate %q, want %q", name, gl.TraceState().AsRaw(), wl.SpanContext.TraceState())
		}
		if gl.Flags()&flagContextIsRemote == 0 {
			t.Errorf("%s: link flags %#x lack the remote bit", name, gl.Flags())
		}
		compareAttrs(t, name+" link", wl.Attributes, gl.Attributes())
	}

	wantCode := map[codes.Code]ptrace.StatusCode{codes.Unset: ptrace.StatusCodeUnset,
		codes.Ok: ptrace.StatusCodeOk, codes.Error: ptrace.StatusCodeError}[want.Status().Code]
	if s.Status().Code() != wantCode || s.Status().Message() != want.Status().Description {
		t.Errorf("%s: status %v %q, want %v %q", name, s.Status().Code(), s.Status().Message(),
			wantCode, want.Status().Description)
	}
}

// compareAttrs checks that got holds exactly want, with the same types.
func compareAttrs(t *testing.T, what string, want []attribute.KeyValue, got pcommon.Map) {
	t.Helper()
	if got.Len() != len(want) {
		t.Errorf("%s: %d attributes, want %d: %v", what, got.Len(), len(want), got.AsRaw())
	}
	for _, kv := range want {
		v, ok := got.Get(string(kv.Key))
		if !ok {
			t.Errorf("%s: attribute %s missing", what, kv.Key)
			continue
		}
		if !valueEqual(kv.Value, v) {
			t.Errorf("%s: attribute %s = %s (%s), want %s (%s)", what, kv.Key, v.AsString(), v.Type(),
				kv.Value.Emit(), kv.Value.Type())
		}
	}
}

func valueEqual(want attribute.Value, got pcommon.Value) bool {
	switch want.Type() {
	case attribute.BOOL:
		return got.Type() == pcommon.ValueTypeBool && got.Bool() == want.AsBool()
	case attribute.INT64:
		return got.Type() == pcommon.ValueTypeInt && got.Int() == want.AsInt64()
	case attribute.FLOAT64:
		return got.Type() == pcommon.ValueTypeDouble && got.Double() == want.AsFloat64()
	case attribute.STRING:
		return got.Type() == pcommon.ValueTypeStr && got.Str() == want.AsString()
	case attribute.BYTESLICE:
		return got.Type() == pcommon.ValueTypeBytes && bytes.Equal(got.Bytes().AsRaw(), want.AsByteSlice())
	case attribute.MAP:
		if got.Type() != pcommon.ValueTypeMap || got.Map().Len() != len(want.AsMap()) {
			return false
		}
		for _, kv := range want.AsMap() {
			v, ok := got.Map().Get(string(kv.Key))
			if !ok || !valueEqual(kv.Value, v) {
				return false
			}
		}
		return true
	}
	var elems []attribute.Value
	switch want.Type() {
	case attribute.BOOLSLICE:
		for _, b := range want.AsBoolSlice() {
			elems = append(elems, attribute.BoolValue(b))
		}
	case attribute.INT64SLICE:
		for _, n := range want.AsInt64Slice() {
			elems = append(elems, attribute.Int64Value(n))
		}
	case attribute.FLOAT64SLICE:
		for _, f := range want.AsFloat64Slice() {
			elems = append(elems, attribute.Float64Value(f))
		}
	case attribute.STRINGSLICE:
		for _, s := range want.AsStringSlice() {
			elems = append(elems, attribute.StringValue(s))
		}
	case attribute.SLICE:
		elems = want.AsSlice()
	default:
		return got.Type() == pcommon.ValueTypeEmpty
	}
	if got.Type() != pcommon.ValueTypeSlice || got.Slice().Len() != len(elems) {
		return false
	}
	for i, e := range elems {
		if !valueEqual(e, got.Slice().At(i)) {
			return false
		}
	}
	return true
}

func TestFileExporterGroupsBatchByResourceAndScope(t *testing.T) {
	var buf bytes.Buffer
	exp := NewFileExporter(&buf)
	rec := tracetest.NewSpanRecorder()
	tpA := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "a"))))
	tpB := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "b"))))
	for _, tp := range []*sdktrace.TracerProvider{tpA, tpB, tpA} {
		for _, scope := range []string{"one", "two"} {
			_, s := tp.Tracer(scope).Start(context.Background(), "s")
			s.End()
		}
	}
	if err := exp.ExportSpans(context.Background(), rec.Ended()); err != nil {
		t.Fatal(err)
	}
	lines := readTraceLines(t, buf.Bytes())
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1 per batch", len(lines))
	}
	td := lines[0]
	if td.ResourceSpans().Len() != 2 {
		t.Fatalf("%d resource groups, want 2", td.ResourceSpans().Len())
	}
	for _, rs := range td.ResourceSpans().All() {
		if rs.ScopeSpans().Len() != 2 {
			t.Errorf("%d scope groups, want 2", rs.ScopeSpans().Len())
		}
	}
	if td.SpanCount() != 6 {
		t.Errorf("%d spans, want 6", td.SpanCount())
	}
}

type failingWriter struct{ n int }

func (w failingWriter) Write(p []byte) (int, error) {
	if w.n >= 0 {
		return w.n, nil // short write
	}
	return 0, errors.New("disk full")
}

func TestFileExporterErrors(t *testing.T) {
	span := func() []sdktrace.ReadOnlySpan {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		_, s := tp.Tracer("t").Start(context.Background(), "s")
		s.End()
		return rec.Ended()
	}
	tests := []struct {
		name    string
		w       io.Writer
		wantErr error
	}{
		{"write error", failingWriter{n: -1}, nil},
		{"short write", failingWriter{n: 3}, io.ErrShortWrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := NewFileExporter(tc.w).ExportSpans(context.Background(), span())
			if err == nil {
				t.Fatal("ExportSpans succeeded on a failing writer")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
		})
	}

	t.Run("after shutdown", func(t *testing.T) {
		var buf bytes.Buffer
		exp := NewFileExporter(&buf)
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := exp.Shutdown(context.Background()); err != nil {
			t.Errorf("second Shutdown: %v", err)
		}
		if err := exp.ExportSpans(context.Background(), span()); !errors.Is(err, ErrShutdown) {
			t.Errorf("export after shutdown: %v, want ErrShutdown", err)
		}
		if buf.Len() != 0 {
			t.Errorf("wrote %d bytes after shutdown", buf.Len())
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var buf bytes.Buffer
		if err := NewFileExporter(&buf).ExportSpans(ctx, span()); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})

	t.Run("bad path", func(t *testing.T) {
		_, err := CreateFileExporter(filepath.Join(t.TempDir(), "missing", "trace.jsonl"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error %v, want ErrNotExist", err)
		}
	})
}

func TestFileExporterFlushesBufferedWriter(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriterSize(&buf, 1<<20)
	exp := NewFileExporter(bw)
	recordSpans(t, exp, resource.Empty(), func(tr trace.Tracer) {
		_, s := tr.Start(context.Background(), "s")
		s.End()
	})
	// recordSpans shut the provider down, which shuts exp down and flushes.
	if got := len(readTraceLines(t, buf.Bytes())); got != 1 {
		t.Errorf("%d lines after shutdown, want 1", got)
	}
}

func TestFileExporterConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	exp, err := CreateFileExporter(path)
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	const workers, batches, perBatch = 8, 20, 5
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range batches {
				var spans []sdktrace.ReadOnlySpan
				for range perBatch {
					_, s := tp.Tracer("t").Start(context.Background(), "s")
					s.End()
					spans = append(spans, s.(sdktrace.ReadOnlySpan))
				}
				if err := exp.ExportSpans(context.Background(), spans); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := exp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := readTraceLines(t, data)
	if len(lines) != workers*batches {
		t.Errorf("%d lines, want %d", len(lines), workers*batches)
	}
	if got := len(flattenSpans(lines)); got != workers*batches*perBatch {
		t.Errorf("%d distinct spans, want %d", got, workers*batches*perBatch)
	}
}
