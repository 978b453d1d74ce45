package otlpread

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzReadJaegerBody feeds arbitrary bytes to the /api/v3/traces response
// decoder: it must return an error or fold spans, never panic.
func FuzzReadJaegerBody(f *testing.F) {
	f.Add([]byte(`{"result":{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"Sync","attributes":[{"key":"migration.id","value":{"stringValue":"x"}},{"key":"migration.role","value":{"stringValue":"destination"}}]}]}]}]}}`))
	f.Add([]byte(`{"error":{"httpCode":404,"message":"trace not found"}}`))
	f.Add([]byte(`{"result":{}}{"result":`))
	f.Add([]byte(`[]`))
	notFound := errors.New("not found")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := New(WithMaxLineBytes(1 << 20))
		_, err := r.readJaegerBody(bytes.NewReader(data), "http://jaeger/api/v3/traces/x", notFound, "http://jaeger")
		if err != nil {
			return
		}
		if ms, err := r.Migrations(); err == nil {
			for _, m := range ms {
				if m.ID == "" {
					t.Fatalf("side without id: %+v", m)
				}
			}
		}
	})
}
