package tracing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// ErrShutdown is returned by exporters used after their Shutdown.
var ErrShutdown = errors.New("exporter is shut down")

// fileExporter writes span batches as OTLP JSON Lines: one TracesData JSON
// object (ptrace.JSONMarshaler) and a newline per batch, which is what the
// OTel Collector's file exporter writes and what ptrace.JSONUnmarshaler
// reads back line by line.
type fileExporter struct {
	mu       sync.Mutex
	w        io.Writer
	closer   io.Closer // set when the exporter opened the file itself
	name     string    // for error messages
	shutdown bool
	buf      []byte
	marshal  ptrace.JSONMarshaler
}

// NewFileExporter returns an exporter that writes each batch it is given
// as one OTLP JSON line to w. It is safe for concurrent use and writes each
// line with a single Write call. Shutdown flushes w when w has a
// Flush() error method (a *bufio.Writer, say) but does not close it: w
// belongs to the caller.
func NewFileExporter(w io.Writer) sdktrace.SpanExporter {
	return &fileExporter{w: w, name: "trace writer"}
}

// CreateFileExporter creates (or truncates) the file at path and returns
// an exporter writing OTLP JSON Lines to it. Shutdown syncs and closes the
// file.
func CreateFileExporter(path string) (sdktrace.SpanExporter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("creating trace file: %w", err)
	}
	return &fileExporter{w: f, closer: f, name: "trace file " + path}, nil
}

// ExportSpans writes spans as one line. A failed or short write is
// returned as an error; the SDK then drops that batch.
func (e *fileExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(spans) == 0 {
		return nil
	}
	td := spansToTraces(spans)
	line, err := e.marshal.MarshalTraces(td)
	if err != nil {
		return fmt.Errorf("encoding %d spans as OTLP JSON: %w", len(spans), err)
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.shutdown {
		return fmt.Errorf("writing to %s: %w", e.name, ErrShutdown)
	}
	// One Write per line keeps lines whole even if w is shared (O_APPEND).
	e.buf = append(append(e.buf[:0], line...), '\n')
	n, err := e.w.Write(e.buf)
	if err == nil && n < len(e.buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("writing %d spans to %s: %w", len(spans), e.name, err)
	}
	return nil
}

// Shutdown flushes and, for files it opened, syncs and closes. It is
// idempotent: later calls return nil.
func (e *fileExporter) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.shutdown {
		return nil
	}
	e.shutdown = true
	var errs []error
	if f, ok := e.w.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("flushing %s: %w", e.name, err))
		}
	}
	if e.closer != nil {
		if s, ok := e.closer.(interface{ Sync() error }); ok {
			if err := s.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("syncing %s: %w", e.name, err))
			}
		}
		if err := e.closer.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", e.name, err))
		}
	}
	e.buf = nil
	return errors.Join(errs...)
}
