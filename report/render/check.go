package render

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

type checkJSON struct {
	Verdict string `json:"verdict"`
	OK      bool   `json:"ok"`
	report.CheckResult
}

// Check writes check verdicts, one migration each. FormatText prints
// "OK migration ID: ..." on one line, naming the rules not verified; or a
// "FAIL ..." / "INCOMPLETE ..." line per problem, then one "not verified:
// ..." line; then "note: ..." lines. Formats: text, json (each result
// with its verdict, the rules verified and those not, and why).
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
			out[i] = checkJSON{Verdict: r.Verdict(), OK: r.OK(), CheckResult: r}
		}
		return writeJSON(w, out)
	}
	return unsupported(f, "check", FormatText, FormatJSON)
}

func writeCheckText(ew *ErrWriter, r report.CheckResult) {
	mig := "migration " + r.MigrationID
	who := func(side schema.Role) string {
		if side == 0 {
			return mig
		}
		return mig + " " + side.String()
	}
	unverified := unverifiedText(r.NotVerified)
	if r.OK() {
		line := fmt.Sprintf("OK %s: %d rules verified on %s", mig, len(r.Verified), sidesText(r.Sides))
		if unverified != "" {
			line += "; not verified: " + unverified
		}
		ew.Printf("%s; continuity: %s\n", line, continuityText(r.Continuity))
	} else {
		for _, f := range r.Problems() {
			if f.Severity == report.SeverityIncomplete {
				ew.Printf("INCOMPLETE %s: %s: %s\n", who(f.Side), f.Rule, f.Message)
				continue
			}
			ew.Printf("FAIL %s: %s: %s: expected %s, got %s\n", who(f.Side), f.Rule, f.Message, f.Expected, f.Got)
		}
		if unverified != "" {
			ew.Printf("not verified: %s: %s\n", mig, unverified)
		}
	}
	for _, f := range r.Notes() {
		ew.Printf("note: %s: %s\n", who(f.Side), f.Message)
	}
}

// unverifiedText lists the rules not verified, those of one side sharing
// a reason together: "a, b (destination) [why]; c [why]".
func unverifiedText(us []report.Unverified) string {
	type group struct {
		side   schema.Role
		reason string
		rules  []string
	}
	var groups []*group
	for _, u := range us {
		i := slices.IndexFunc(groups, func(g *group) bool { return g.side == u.Side && g.reason == u.Reason })
		if i < 0 {
			groups = append(groups, &group{side: u.Side, reason: u.Reason})
			i = len(groups) - 1
		}
		groups[i].rules = append(groups[i].rules, u.Rule)
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g.rules, ", ")
		if g.side != 0 {
			parts[i] += " (" + g.side.String() + ")"
		}
		parts[i] += " [" + g.reason + "]"
	}
	return strings.Join(parts, "; ")
}

func sidesText(sides []schema.Role) string {
	switch len(sides) {
	case 0:
		return "no side"
	case 1:
		return "the " + sides[0].String() + " only"
	}
	return "both sides"
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
