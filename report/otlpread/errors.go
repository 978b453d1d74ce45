package otlpread

import (
	"errors"
	"fmt"

	"github.com/migtrace/migtrace/tracing/spancodec"
)

// Errors wrapped by the reader; match them with errors.Is.
var (
	// ErrNotJSON: a line is not valid JSON (or is cut short).
	ErrNotJSON = errors.New("not valid OTLP JSON")
	// ErrNotTraces: a line is JSON but not OTLP trace data.
	ErrNotTraces = errors.New("not OTLP trace data")
	// ErrLineTooLong: a line exceeds the reader's line limit.
	ErrLineTooLong = errors.New("line too long")
	// ErrBadAttribute: a migtrace span carries an attribute of the wrong
	// type or an unparsable value.
	ErrBadAttribute = spancodec.ErrBadAttribute
	// ErrTraceNotFound: Jaeger does not know the trace id.
	ErrTraceNotFound = errors.New("trace ID not found")
	// ErrJaegerUnreachable: the Jaeger query service did not answer.
	ErrJaegerUnreachable = errors.New("Jaeger unreachable")
	// ErrInvalidTraceID: a trace id is not 1 to 32 hex digits.
	ErrInvalidTraceID = errors.New("invalid trace ID")
)

// LineError locates a problem in the input: Name is the file name (or
// "stdin", or the Jaeger URL) and Line is 1-based (for Jaeger, the
// response chunk).
type LineError struct {
	Name string
	Line int
	Err  error
}

func (e *LineError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.Name, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }
