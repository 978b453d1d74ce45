package otlpread

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// Reader folds migtrace spans from any number of inputs into one set of
// migrations. It is not safe for concurrent use.
type Reader struct {
	cfg   config
	dec   *spancodec.Decoder
	stats Stats
}

// Stats counts what a Reader consumed.
type Stats struct {
	Bytes int64 // input bytes, newlines included
	Lines int64 // non-blank lines (or Jaeger chunks)
	Spans int64 // spans seen, migtrace's or not
	Ours  int64 // migtrace spans folded into the model
}

// New returns an empty Reader.
func New(opts ...Option) *Reader {
	return &Reader{cfg: newConfig(opts), dec: spancodec.NewDecoder()}
}

// Stats returns what the reader has consumed so far.
func (r *Reader) Stats() Stats { return r.stats }

// ReadFile reads an OTLP JSON Lines file.
func (r *Reader) ReadFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading traces: %w", err)
	}
	defer f.Close()
	return r.Read(ctx, f, path)
}

// Read reads OTLP JSON Lines from in; name appears in errors. Blank lines
// are skipped; every other line must be one OTLP TracesData object.
//
// Lines are decoded in parallel (decoding dominates the cost; see
// WithDecoders) and folded
// into the model in input order, so results and the error reported (the
// first bad line) do not depend on scheduling. At most a few lines per
// CPU are in flight, which bounds memory.
func (r *Reader) Read(ctx context.Context, in io.Reader, name string) error {
	workers := r.cfg.decoders
	if workers <= 0 {
		// Half the CPUs: decoding allocates heavily, and the collector
		// and the folder need the rest (on 2 CPUs one decoder measured
		// faster than two).
		workers = min(max(runtime.GOMAXPROCS(0)/2, 1), 8)
	}
	jobs := make(chan *lineJob)
	pending := make(chan *lineJob, 2*workers)
	// Line buffers are recycled: there are never more in use than lines
	// in flight.
	free := make(chan []byte, 2*workers+2)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				j.td, j.err = decodeLine(j.buf)
				// The decoder copies what it keeps, so the line's
				// buffer can carry a later line.
				select {
				case free <- j.buf[:0]:
				default:
				}
				j.buf = nil
				close(j.done)
			}
		}()
	}

	// The folder owns r.sides and r.stats while Read runs.
	stop := make(chan struct{})
	folded := make(chan error, 1)
	go func() {
		var first error
		for j := range pending {
			<-j.done
			if first != nil {
				continue // drain
			}
			err := j.err
			if err == nil {
				r.stats.Lines++
				err = r.addTraces(j.td)
			}
			if err != nil {
				first = &LineError{Name: name, Line: j.line, Err: err}
				close(stop)
			}
		}
		folded <- first
	}()

	scanErr := r.scanLines(ctx, in, name, stop, free, func(j *lineJob) {
		pending <- j
		jobs <- j
	})
	close(jobs)
	close(pending)
	wg.Wait()
	if err := <-folded; err != nil {
		return err // a bad line comes before whatever stopped the scan
	}
	return scanErr
}

type lineJob struct {
	line int
	buf  []byte
	td   ptrace.Traces
	err  error
	done chan struct{}
}

// scanLines splits in into lines and hands each non-blank one, copied, to
// dispatch, until the input ends, ctx is done or stop is closed.
func (r *Reader) scanLines(ctx context.Context, in io.Reader, name string, stop <-chan struct{}, free chan []byte, dispatch func(*lineJob)) error {
	sc := bufio.NewScanner(in)
	initial := min(64<<10, r.cfg.maxLineBytes)
	sc.Buffer(make([]byte, initial), r.cfg.maxLineBytes)
	line := 0
	var nbytes int64
	defer func() { r.stats.Bytes += nbytes }()
	for sc.Scan() {
		line++
		select {
		case <-stop:
			return nil
		default:
		}
		if line%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		buf := sc.Bytes()
		nbytes += int64(len(buf)) + 1
		if len(bytes.TrimSpace(buf)) == 0 {
			continue
		}
		var own []byte
		select {
		case own = <-free:
		default:
		}
		dispatch(&lineJob{line: line, buf: append(own, buf...), done: make(chan struct{})})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &LineError{Name: name, Line: line + 1,
				Err: fmt.Errorf("%w: longer than %d bytes", ErrLineTooLong, r.cfg.maxLineBytes)}
		}
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return ctx.Err()
}

// decodeLine decodes one TracesData JSON object.
func decodeLine(buf []byte) (ptrace.Traces, error) {
	if i := firstNonSpace(buf); i < 0 || buf[i] != '{' {
		return ptrace.Traces{}, fmt.Errorf("%w: a line must be a JSON object (TracesData)", ErrNotTraces)
	}
	var u ptrace.JSONUnmarshaler
	td, err := u.UnmarshalTraces(buf)
	if err != nil {
		return ptrace.Traces{}, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if td.ResourceSpans().Len() == 0 {
		return ptrace.Traces{}, fmt.Errorf("%w: no resourceSpans (is this a metrics or logs file?)", ErrNotTraces)
	}
	return td, nil
}

func firstNonSpace(b []byte) int {
	for i, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return i
		}
	}
	return -1
}

func (r *Reader) addTraces(td ptrace.Traces) error {
	before, _ := r.dec.Counts()
	err := r.dec.AddTraces(td)
	spans, ours := r.dec.Counts()
	r.stats.Spans += spans - before
	r.stats.Ours = ours
	return err
}

// Migrations returns every side read so far, in start order, or an error
// wrapping report.ErrNoMigrations when no migtrace span was read.
func (r *Reader) Migrations() ([]model.Side, error) {
	if r.dec.Len() == 0 {
		return nil, fmt.Errorf("%w (expected spans named %q or after a phase, with attribute %s; read %d spans in %d lines)",
			report.ErrNoMigrations, schema.SpanMigration, schema.AttrMigrationID, r.stats.Spans, r.stats.Lines)
	}
	return r.dec.Sides(), nil
}
