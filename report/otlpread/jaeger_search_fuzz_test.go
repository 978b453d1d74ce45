package otlpread

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// bodyTransport answers every request with status and body.
type bodyTransport struct {
	status int
	body   []byte
}

func (b bodyTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: b.status, Status: http.StatusText(b.status), Body: io.NopCloser(bytes.NewReader(b.body)), Header: http.Header{}}, nil
}

// FuzzSearchJaeger feeds arbitrary answers to the trace search: it must
// return an error or count traces and fold spans, never panic, and
// report traces only when it read some.
func FuzzSearchJaeger(f *testing.F) {
	f.Add(200, []byte(`{"result":{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"Sync","attributes":[{"key":"migration.id","value":{"stringValue":"x"}},{"key":"migration.role","value":{"stringValue":"destination"}}]}]}]}]}}`))
	f.Add(404, []byte(`{"error":{"httpCode":404,"message":"No traces found"}}`))
	f.Add(200, []byte(`{"error":{"httpCode":500,"message":"boom"}}`))
	f.Add(200, []byte(`{"result":{"resourceSpans":[{}]}}{"result":`))
	f.Add(500, []byte(`<html>`))
	end := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	q := SearchQuery{Service: "migtrace", Start: end.Add(-time.Hour), End: end, Limit: 10}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 599 {
			status = 200
		}
		r := New(WithMaxLineBytes(1<<20), WithHTTPClient(&http.Client{Transport: bodyTransport{status, body}}))
		n, err := r.SearchJaeger(context.Background(), "http://jaeger:16686", q)
		if err != nil {
			if errors.Is(err, ErrNoTracesFound) && n != 0 {
				t.Fatalf("no traces found, yet %d counted", n)
			}
			return
		}
		if n <= 0 || status != http.StatusOK {
			t.Fatalf("%d traces from HTTP %d without an error", n, status)
		}
	})
}
