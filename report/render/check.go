package render

import (
	"fmt"
	"io"
	"strings"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/model"
)

type checkJSON struct {
	Role string `json:"role"`
	OK   bool   `json:"ok"`
	report.CheckResult
}

// Check writes check verdicts. FormatText prints, per migration side,
// "OK ..." (one line), "SKIP ..." or a "FAIL ..." line per violation, and
// "note: ..." lines. Formats: text, json.
func Check(w io.Writer, results []report.CheckResult, f Format) error {
	switch f {
	case FormatText:
		ew := NewErrWriter(w)
		for _, r := range results {
			writeCheckText(ew, r)
		}
		return ew.Err()
	case FormatJSON:
		out := make([]checkJSON, len(results))
		for i, r := range results {
			if r.Findings == nil {
				r.Findings = []report.Finding{}
			}
			out[i] = checkJSON{Role: r.Role.String(), OK: r.OK(), CheckResult: r}
		}
		return writeJSON(w, out)
	}
	return unsupported(f, "check", FormatText, FormatJSON)
}

func writeCheckText(ew *ErrWriter, r report.CheckResult) {
	who := fmt.Sprintf("migration %s %s", r.MigrationID, r.Role)
	if r.Skipped != "" {
		ew.Printf("SKIP %s: %s\n", who, r.Skipped)
		return
	}
	for _, f := range r.Violations() {
		ew.Printf("FAIL %s: %s: %s: expected %s, got %s\n", who, f.Rule, f.Message, f.Expected, f.Got)
	}
	if r.OK() {
		ew.Printf("OK %s: %d rules hold; continuity: %s\n", who, r.Checked, continuityText(r.Continuity))
	}
	for _, f := range r.Findings {
		if f.Severity == report.SeverityNote {
			ew.Printf("note: %s: %s\n", who, f.Message)
		}
	}
}

func continuityText(c *model.Continuity) string {
	if c == nil {
		return "not recorded"
	}
	var parts []string
	if c.TSCMonotonic {
		parts = append(parts, fmt.Sprintf("TSC monotonic over %d samples", c.TSCSamples))
	} else {
		parts = append(parts, fmt.Sprintf("TSC NOT monotonic over %d samples", c.TSCSamples))
	}
	if c.ErrorNs != nil {
		// Continuity errors are fractions of a µs to a few µs: keep two
		// decimals rather than HumanDuration's whole µs.
		parts = append(parts, fmt.Sprintf("error %.2f µs", float64(*c.ErrorNs)/1e3))
	}
	parts = append(parts, okText("memory checksum", c.MemoryChecksumOK), okText("device state", c.DeviceStateMatches))
	return strings.Join(parts, ", ")
}

func okText(what string, ok bool) string {
	if ok {
		return what + " ok"
	}
	return what + " MISMATCH"
}

// TSCContinuityLine is the one-line account of the resumed guest's TSC
// against the wall clock, e.g. "guest TSC continuity: median error 0.42
// µs over 127 samples (TSC offset honoured: no)", or "" where the backend
// could not measure it.
func TSCContinuityLine(c *model.Continuity) string {
	if c == nil || c.ErrorNs == nil {
		return ""
	}
	honoured := "unknown"
	if c.TSCOffsetHonoured != nil {
		honoured = yesNo(*c.TSCOffsetHonoured)
	}
	return fmt.Sprintf("guest TSC continuity: median error %.2f µs over %d samples (TSC offset honoured: %s)",
		float64(*c.ErrorNs)/1e3, c.ErrorSamples, honoured)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
