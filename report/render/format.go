package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Format is an output format.
type Format string

// The formats. Not every renderer has every format (see each function).
const (
	FormatDTrace Format = "dtrace" // the D scripts' printf layouts
	FormatTable  Format = "table"  // a boxed table
	FormatJSON   Format = "json"
	FormatCSV    Format = "csv"
	FormatText   Format = "text" // check verdicts, one line each
)

// ErrUnsupportedFormat: the renderer has no such format.
var ErrUnsupportedFormat = errors.New("unsupported output format")

func unsupported(f Format, what string, have ...Format) error {
	names := make([]string, len(have))
	for i, h := range have {
		names[i] = string(h)
	}
	return fmt.Errorf("%w %q for %s (want %s)", ErrUnsupportedFormat, f, what, strings.Join(names, ", "))
}

// ErrWriter keeps the first write error, so a renderer prints freely and
// checks once.
type ErrWriter struct {
	w   io.Writer
	err error
}

// NewErrWriter returns an ErrWriter writing to w.
func NewErrWriter(w io.Writer) *ErrWriter { return &ErrWriter{w: w} }

// Printf writes unless an earlier write failed.
func (e *ErrWriter) Printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

// Err is the first write error.
func (e *ErrWriter) Err() error { return e.err }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeTable renders a boxed table with the first textCols columns
// left-aligned and the rest, numbers, right-aligned.
func writeTable(w io.Writer, textCols int, header []string, rows [][]string, footer []string) error {
	align := make(tw.Alignment, len(header))
	for i := range align {
		align[i] = tw.AlignRight
		if i < textCols {
			align[i] = tw.AlignLeft
		}
	}
	t := tablewriter.NewTable(w,
		tablewriter.WithAlignment(align),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithFooterAutoFormat(tw.Off),
	)
	t.Header(toAny(header)...)
	for _, r := range rows {
		if err := t.Append(r); err != nil {
			return err
		}
	}
	if footer != nil {
		t.Footer(toAny(footer)...)
	}
	return t.Render()
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
