package otlpread

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ErrNoTracesFound: Jaeger's trace search found nothing in the window.
var ErrNoTracesFound = errors.New("no traces found")

// SearchQuery selects traces for SearchJaeger: those with spans of
// Service that started between Start and End, at most Limit of them
// (Jaeger returns the most recent).
type SearchQuery struct {
	Service    string
	Start, End time.Time
	Limit      int
}

func (q SearchQuery) check() error {
	switch {
	case q.Service == "":
		return errors.New("trace search: no service name")
	case !q.Start.Before(q.End):
		return fmt.Errorf("trace search: the window starts at %s, not before its end %s", q.Start.Format(time.RFC3339), q.End.Format(time.RFC3339))
	case q.Limit <= 0:
		return fmt.Errorf("trace search: limit %d, want at least 1", q.Limit)
	}
	return nil
}

// SearchJaeger finds the traces of q with Jaeger's trace search (API v3,
// GET /api/v3/traces?query.service_name=...) at baseURL and folds their
// spans in. It returns how many traces the answer held, so that a caller
// can tell when Limit cut the search short. A window without traces is
// an error wrapping ErrNoTracesFound.
func (r *Reader) SearchJaeger(ctx context.Context, baseURL string, q SearchQuery) (int, error) {
	if err := q.check(); err != nil {
		return 0, err
	}
	v := url.Values{}
	v.Set("query.service_name", q.Service)
	// Jaeger parses the window as RFC 3339 with nanoseconds, and its
	// in-memory store refuses a search without num_traces.
	v.Set("query.start_time_min", q.Start.UTC().Format(time.RFC3339Nano))
	v.Set("query.start_time_max", q.End.UTC().Format(time.RFC3339Nano))
	v.Set("query.num_traces", strconv.Itoa(q.Limit))
	endpoint := strings.TrimRight(baseURL, "/") + "/api/v3/traces?" + v.Encode()
	resp, err := r.jaegerGet(ctx, baseURL, endpoint)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	none := fmt.Errorf("%w in Jaeger at %s for service %q from %s to %s", ErrNoTracesFound, baseURL, q.Service,
		q.Start.UTC().Format(time.RFC3339), q.End.UTC().Format(time.RFC3339))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		// Jaeger answers an empty search with 404 "No traces found".
		return 0, none
	case resp.StatusCode != http.StatusOK:
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("Jaeger at %s answered %s to the trace search: %s", baseURL, resp.Status, bytes.TrimSpace(snippet))
	}
	ids := make(map[pcommon.TraceID]struct{})
	chunks, err := r.readJaegerChunks(resp.Body, endpoint, none, baseURL, func(td ptrace.Traces) {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					ids[sp.TraceID()] = struct{}{}
				}
			}
		}
	})
	if err != nil {
		return len(ids), err
	}
	if chunks == 0 || len(ids) == 0 {
		return 0, none
	}
	return len(ids), nil
}
