package render

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/schema"
)

// diagnoseWidth is where text output wraps.
const diagnoseWidth = 80

// Diagnose writes diagnoses, one migration each. FormatText is for
// people: per migration its result, the total and the pause with their
// causes and why, what to change, the evidence with units, and what the
// input did not record. FormatJSON is an array of report.Diagnosis.
func Diagnose(w io.Writer, ds []report.Diagnosis, f Format) error {
	switch f {
	case FormatText:
		ew := NewErrWriter(w)
		for i, d := range ds {
			if i > 0 {
				ew.Printf("\n")
			}
			writeDiagnosisText(ew, d)
		}
		return ew.Err()
	case FormatJSON:
		if ds == nil {
			ds = []report.Diagnosis{}
		}
		return writeJSON(w, ds)
	}
	return unsupported(f, "diagnose", FormatText, FormatJSON)
}

func writeDiagnosisText(ew *ErrWriter, d report.Diagnosis) {
	result := d.Result
	if result == "" {
		result = "no result recorded"
	}
	var sides []string
	for _, s := range d.Sides {
		sides = append(sides, s.String())
	}
	ew.Printf("migration %s: %s (times on the %s's clock; records of: %s)\n", d.MigrationID, result, roleName(d.Role), strings.Join(sides, ", "))
	total := "total " + HumanDuration(d.TotalNs)
	ew.Printf("%s", wrapIndented(fmt.Sprintf("%s: %s: %s", total, d.Cause, d.Why), "  ", "      "))
	pause := "pause"
	switch {
	case d.BlackoutNs > 0:
		pause = fmt.Sprintf("blackout %s (downtime %s)", HumanDuration(d.BlackoutNs), HumanDuration(d.DowntimeNs))
	case d.DowntimeNs > 0:
		pause = "downtime " + HumanDuration(d.DowntimeNs)
	}
	ew.Printf("%s", wrapIndented(fmt.Sprintf("%s: %s: %s", pause, d.DowntimeCause, d.DowntimeWhy), "  ", "      "))
	if d.Suggestion != "" {
		ew.Printf("%s", wrapIndented("change: "+d.Suggestion, "  ", "      "))
	}
	if len(d.Evidence) > 0 {
		items := make([]string, len(d.Evidence))
		for i, m := range d.Evidence {
			items[i] = evidenceText(m)
		}
		ew.Printf("%s", wrapIndented("evidence: "+strings.Join(items, ", "), "  ", "      "))
	}
	if len(d.NotRecorded) > 0 {
		ew.Printf("%s", wrapIndented("not recorded: "+strings.Join(d.NotRecorded, ", "), "  ", "      "))
	}
}

func roleName(r schema.Role) string {
	if r == 0 {
		return "no side"
	}
	return r.String()
}

// evidenceText prints a measure with its unit: "ram 16.1ms",
// "ram share 71.0%", "precopy wire 8.3 MiB/s".
func evidenceText(m report.Measure) string {
	n, v := m.Name, m.Value
	name := func(suffix string) string { return strings.ReplaceAll(strings.TrimSuffix(n, suffix), "_", " ") }
	switch {
	case strings.HasSuffix(n, "_bytes_per_sec"):
		return name("_bytes_per_sec") + " " + HumanBytes(v) + "/s"
	case strings.HasSuffix(n, "_pages_per_sec"):
		return name("_pages_per_sec") + " " + strconv.FormatFloat(v, 'f', 0, 64) + " pages/s"
	case strings.HasSuffix(n, "_bytes"):
		return name("_bytes") + " " + HumanBytes(v)
	case strings.HasSuffix(n, "_ns"):
		return name("_ns") + " " + HumanDuration(int64(v))
	case strings.HasSuffix(n, "_share"):
		return strings.ReplaceAll(n, "_", " ") + " " + strconv.FormatFloat(100*v, 'f', 1, 64) + "%"
	case strings.HasSuffix(n, "_ratio"):
		return strings.ReplaceAll(n, "_", " ") + " " + strconv.FormatFloat(v, 'f', 3, 64)
	}
	return strings.ReplaceAll(n, "_", " ") + " " + strconv.FormatFloat(v, 'f', -1, 64)
}

// wrapIndented breaks s into lines of at most diagnoseWidth columns, the first
// indented by first and the rest by rest; a word longer than a line
// stands alone (a terminal can show it; timeline's wrap, for SVG text
// that cannot overflow, splits it instead).
func wrapIndented(s, first, rest string) string {
	var b strings.Builder
	line := first
	empty := true
	for _, w := range strings.Fields(s) {
		if !empty && len([]rune(line))+1+len([]rune(w)) > diagnoseWidth {
			b.WriteString(line + "\n")
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += w
		empty = false
	}
	b.WriteString(line + "\n")
	return b.String()
}
