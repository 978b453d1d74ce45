package otlpread

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ValidTraceID checks that id is 1 to 32 hex digits, the form Jaeger's
// API takes.
func ValidTraceID(id string) error {
	if id == "" || len(id) > 32 {
		return fmt.Errorf("%w %q: want 1 to 32 hex digits", ErrInvalidTraceID, id)
	}
	for _, c := range id {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return fmt.Errorf("%w %q: want 1 to 32 hex digits", ErrInvalidTraceID, id)
		}
	}
	return nil
}

// jaegerChunk is one object of the /api/v3/traces response. The gateway
// streams one {"result": TracesData} object per chunk, or an error object.
type jaegerChunk struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		HTTPCode int    `json:"httpCode"`
		Message  string `json:"message"`
	} `json:"error"`
}

// ReadJaeger fetches trace traceID from the Jaeger query service at
// baseURL (e.g. http://localhost:16686) with GET /api/v3/traces/{id} and
// folds its spans in.
func (r *Reader) ReadJaeger(ctx context.Context, baseURL, traceID string) error {
	if err := ValidTraceID(traceID); err != nil {
		return err
	}
	endpoint := strings.TrimRight(baseURL, "/") + "/api/v3/traces/" + strings.ToLower(traceID)
	resp, err := r.jaegerGet(ctx, baseURL, endpoint)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	notFound := fmt.Errorf("%w in Jaeger at %s: %s", ErrTraceNotFound, baseURL, traceID)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return notFound
	case resp.StatusCode != http.StatusOK:
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("Jaeger at %s answered %s: %s", baseURL, resp.Status, bytes.TrimSpace(snippet))
	}

	chunks, err := r.readJaegerBody(resp.Body, endpoint, notFound, baseURL)
	if err != nil {
		return err
	}
	if chunks == 0 {
		return notFound
	}
	return nil
}

// jaegerGet checks that baseURL is an http(s) URL and GETs endpoint,
// a URL under it; an unanswered request wraps ErrJaegerUnreachable.
func (r *Reader) jaegerGet(ctx context.Context, baseURL, endpoint string) (*http.Response, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("Jaeger URL %q: want http://HOST:PORT", baseURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("querying Jaeger: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.cfg.httpClient.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: connection refused at %s (is the Jaeger query service running there?): %v", ErrJaegerUnreachable, baseURL, err)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrJaegerUnreachable, baseURL, err)
	}
	return resp, nil
}

// readJaegerBody folds in the stream of {"result": TracesData} objects of
// an /api/v3/traces response and returns how many it read.
func (r *Reader) readJaegerBody(body io.Reader, endpoint string, notFound error, baseURL string) (int, error) {
	return r.readJaegerChunks(body, endpoint, notFound, baseURL, nil)
}

// readJaegerChunks is readJaegerBody, calling each (if set) with every
// chunk's traces before they are folded in.
func (r *Reader) readJaegerChunks(body io.Reader, endpoint string, notFound error, baseURL string, each func(ptrace.Traces)) (int, error) {
	counted := &countingReader{r: io.LimitReader(body, int64(r.cfg.maxLineBytes)+1)}
	dec := json.NewDecoder(counted)
	chunks := 0
	for {
		var c jaegerChunk
		err := dec.Decode(&c)
		if errors.Is(err, io.EOF) {
			return chunks, nil
		}
		chunks++
		if counted.n > int64(r.cfg.maxLineBytes) {
			return chunks, &LineError{Name: endpoint, Line: chunks,
				Err: fmt.Errorf("%w: response larger than %d bytes", ErrLineTooLong, r.cfg.maxLineBytes)}
		}
		if err != nil {
			return chunks, &LineError{Name: endpoint, Line: chunks, Err: fmt.Errorf("%w: %v", ErrNotJSON, err)}
		}
		if c.Error != nil {
			if c.Error.HTTPCode == http.StatusNotFound {
				return chunks, notFound
			}
			return chunks, fmt.Errorf("Jaeger at %s: %s (HTTP %d)", baseURL, c.Error.Message, c.Error.HTTPCode)
		}
		if len(c.Result) == 0 {
			return chunks, &LineError{Name: endpoint, Line: chunks, Err: fmt.Errorf("%w: no \"result\" object", ErrNotTraces)}
		}
		r.stats.Bytes += int64(len(c.Result))
		td, err := decodeLine(c.Result)
		if err != nil {
			return chunks, &LineError{Name: endpoint, Line: chunks, Err: err}
		}
		r.stats.Lines++
		if each != nil {
			each(td)
		}
		if err := r.addTraces(td); err != nil {
			return chunks, &LineError{Name: endpoint, Line: chunks, Err: err}
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
