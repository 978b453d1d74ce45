package tracingtest

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func sampleTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("Sync")
	s.SetTraceID([16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	s.SetSpanID([8]byte{1, 2, 3, 4, 5, 6, 7, 8})
	s.Attributes().PutInt("migration.phase.begin_ns", 18028032305249)
	return td
}

func TestDecodeTraceResponse(t *testing.T) {
	var m ptrace.JSONMarshaler
	body, err := m.MarshalTraces(sampleTraces())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		body    string
		spans   int
		wantErr string
	}{
		{"result", `{"result":` + string(body) + `}`, 1, ""},
		{"not found", `{"error":{"httpCode":404,"message":"No traces found"}}`, 0, `no "result" field`},
		{"not json", `<html>`, 0, "decoding jaeger response"},
		{"bad result", `{"result":{"resourceSpans":"x"}}`, 0, "as OTLP JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td, err := DecodeTraceResponse([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if td.SpanCount() != tc.spans {
				t.Fatalf("%d spans, want %d", td.SpanCount(), tc.spans)
			}
			s := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			if v, _ := s.Attributes().Get("migration.phase.begin_ns"); s.Name() != "Sync" || v.Int() != 18028032305249 {
				t.Errorf("span %q begin_ns %v", s.Name(), v.AsRaw())
			}
		})
	}
}

func FuzzDecodeTraceResponse(f *testing.F) {
	var m ptrace.JSONMarshaler
	body, err := m.MarshalTraces(sampleTraces())
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"result":` + string(body) + `}`))
	f.Add([]byte(`{"error":{"httpCode":404,"message":"No traces found"}}`))
	f.Add([]byte(`{"result":null}`))
	f.Add([]byte(`{"result":{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		td, err := DecodeTraceResponse(b)
		if err != nil {
			return
		}
		// Whatever decodes must survive a re-encode.
		if _, err := m.MarshalTraces(td); err != nil {
			t.Fatalf("re-encoding decoded traces: %v", err)
		}
	})
}
