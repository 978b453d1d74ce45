package tracing

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/migtrace/migtrace/tracing/spancodec"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

// FuzzFileExporterRoundTrip feeds arbitrary names and attribute values
// through the exporter and ptrace.JSONUnmarshaler: every line must parse,
// and valid UTF-8 must come back exactly.
func FuzzFileExporterRoundTrip(f *testing.F) {
	f.Add("TimeData", "migration.time.guest_tsc", "18446744073709551615", int64(-1), 2.5, true, int64(1683850713581965192))
	f.Add("", "", "", int64(0), 0.0, false, int64(0))
	f.Add("\xff", "k\x00", "\"\\\n\t", int64(math.MinInt64), math.Inf(1), true, int64(-1))
	f.Add("Kernel ✓", "ключ", "值", int64(math.MaxInt64), math.NaN(), false, int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, name, key, str string, n int64, fl float64, b bool, ts int64) {
		if key == "" {
			key = "empty" // the SDK drops attributes with empty keys
		}
		start := time.Unix(0, ts%(1<<62)).UTC()
		if ts < 0 {
			start = time.Unix(0, 0)
		}
		attrs := []attribute.KeyValue{
			attribute.String(key, str),
			attribute.Int64("n", n),
			attribute.Float64("f", fl),
			attribute.Bool("b", b),
			attribute.StringSlice("ss", []string{str, name}),
			spancodec.Uint64("u", uint64(n)),
		}
		var buf bytes.Buffer
		ended := recordSpans(t, NewFileExporter(&buf), resource.Empty(), func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
			s.AddEvent(str, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
			s.End(trace.WithTimestamp(start))
		})
		got := flattenSpans(readTraceLines(t, buf.Bytes()))
		if len(got) != 1 {
			t.Fatalf("%d spans read back, want 1", len(got))
		}
		if !utf8.ValidString(name + key + str) {
			return // OTLP strings are UTF-8; invalid bytes need not survive
		}
		g := got[ended[0].SpanContext().SpanID()].span
		if g.Name() != name || g.Events().At(0).Name() != str {
			t.Errorf("names %q/%q, want %q/%q", g.Name(), g.Events().At(0).Name(), name, str)
		}
		if !g.StartTimestamp().AsTime().Equal(start) {
			t.Errorf("start %v, want %v", g.StartTimestamp().AsTime(), start)
		}
		for _, m := range []struct {
			what string
			v    func(string) (any, bool)
		}{
			{"span", func(k string) (any, bool) { v, ok := g.Attributes().Get(k); return v.AsRaw(), ok }},
			{"event", func(k string) (any, bool) { v, ok := g.Events().At(0).Attributes().Get(k); return v.AsRaw(), ok }},
		} {
			for _, kv := range attrs {
				v, ok := m.v(string(kv.Key))
				if !ok {
					t.Errorf("%s attribute %q missing", m.what, kv.Key)
					continue
				}
				if !rawEqual(kv.Value, v) {
					t.Errorf("%s attribute %q = %#v, want %s", m.what, kv.Key, v, kv.Value.Emit())
				}
			}
		}
	})
}

// rawEqual compares an attribute with pcommon's AsRaw form, treating NaN
// as equal to NaN.
func rawEqual(want attribute.Value, got any) bool {
	switch want.Type() {
	case attribute.STRING:
		return got == want.AsString()
	case attribute.INT64:
		return got == want.AsInt64()
	case attribute.BOOL:
		return got == want.AsBool()
	case attribute.FLOAT64:
		g, ok := got.(float64)
		w := want.AsFloat64()
		return ok && (g == w || (math.IsNaN(g) && math.IsNaN(w)))
	case attribute.STRINGSLICE:
		g, ok := got.([]any)
		w := want.AsStringSlice()
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if g[i] != w[i] {
				return false
			}
		}
		return true
	}
	return false
}
