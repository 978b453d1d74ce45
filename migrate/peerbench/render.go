package peerbench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Render writes the report: a header line, one Markdown table (one row
// per case and system; it reads as well in a terminal as in a document),
// what the columns mean, the failed runs, and the goals.
func Render(w io.Writer, r Report) error {
	ew := &errWriter{w: w}
	ew.printf("peerbench %s: %d runs per case and system, alternating; max bandwidth %s, downtime target %v\n",
		r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Runs, fmtRate(r.MaxBandwidth), r.DowntimeTarget)
	ew.printf("load average (1, 5, 15 min) before %s, after %s\n", fmtLoad(r.LoadBefore), fmtLoad(r.LoadAfter))
	if r.Command != "" {
		ew.printf("command: %s\n", r.Command)
	}
	ew.printf("\n")

	header := []string{"case", "system", "runs", "total ms", "downtime ms", "blackout ms", "guest RAM moved MiB/s", "zero pages", "rounds", "load 1 min"}
	rows := [][]string{header}
	var failures []string
	for _, cr := range r.Cases {
		for _, sr := range cr.Systems {
			row := []string{cr.Case.Name, sr.System.Name, fmt.Sprintf("%d/%d", len(sr.Samples), len(sr.Samples)+len(sr.Errors))}
			if len(sr.Samples) == 0 {
				row = append(row, "—", "—", "—", "—", "—", "—", "—")
			} else {
				for _, col := range []func(Sample) float64{colTotal, colDowntime, colBlackout, colMoved, colZero, colRounds} {
					row = append(row, fmtStat(sr.stat(col)))
				}
				l := sr.stat(colLoad)
				row = append(row, fmtNum2(l.Min)+"–"+fmtNum2(l.Max))
			}
			rows = append(rows, row)
			for _, e := range sr.Errors {
				failures = append(failures, fmt.Sprintf("%s, %s: %s", cr.Case.Name, sr.System.Name, e))
			}
		}
	}
	writeMarkdown(ew, rows)

	ew.printf("\nEach cell: median [min–max] over the runs. total: the source's own measure (QEMU total-time;\n" +
		"migtrace, its source record's start to end). downtime: the source's (QEMU query-migrate, whole ms;\n" +
		"migtrace, pause to handoff). blackout: guest paused on the source to running on the destination (QEMU,\n" +
		"source STOP to destination RESUME event timestamps; migtrace, the destination's figure). guest RAM moved:\n" +
		"pages sent, zero pages and resends included, × page size / total. rounds: passes over guest memory,\n" +
		"the paused one included (QEMU dirty-sync-count; migtrace, its RAM phases' rounds).\n")
	if len(failures) > 0 {
		ew.printf("\nFailed runs:\n")
		for _, f := range failures {
			ew.printf("- %s\n", f)
		}
	}
	ew.printf("\nGoals (ratios of medians from this run):\n")
	for _, g := range r.Goals() {
		switch {
		case g.Missing != "":
			ew.printf("- %s: not evaluated (%s)\n", g.Text, g.Missing)
		default:
			verdict := "not met"
			if g.Met {
				verdict = "met"
			}
			extra := ""
			if g.Extra != "" {
				extra = "; " + g.Extra
			}
			ew.printf("- %s: %s (ratio %s%s)\n", g.Text, verdict, fmtNum2(g.Ratio), extra)
		}
	}
	return ew.err
}

// writeMarkdown writes rows (the first is the header) as a Markdown table
// with padded columns; numeric columns are right-aligned.
func writeMarkdown(ew *errWriter, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	right := func(i int) bool { return i >= 2 }
	line := func(row []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if right(i) {
				b.WriteString(" " + pad + c + " |")
			} else {
				b.WriteString(" " + c + pad + " |")
			}
		}
		ew.printf("%s\n", b.String())
	}
	line(rows[0])
	var b strings.Builder
	b.WriteString("|")
	for i, w := range widths {
		if right(i) {
			b.WriteString(" " + strings.Repeat("-", w-1) + ": |")
		} else {
			b.WriteString(" " + strings.Repeat("-", w) + " |")
		}
	}
	ew.printf("%s\n", b.String())
	for _, row := range rows[1:] {
		line(row)
	}
}

func fmtStat(s Stat) string {
	return fmtNum(s.Median) + " [" + fmtNum(s.Min) + "–" + fmtNum(s.Max) + "]"
}

// fmtNum prints about three significant digits, whole numbers from 100 up.
func fmtNum(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100 || v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtNum2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func fmtLoad(l [3]float64) string {
	return fmtNum2(l[0]) + " " + fmtNum2(l[1]) + " " + fmtNum2(l[2])
}

func fmtRate(b uint64) string {
	switch {
	case b == 0:
		return "none"
	case b%(1<<30) == 0:
		return strconv.FormatUint(b>>30, 10) + " GiB/s"
	case b%(1<<20) == 0:
		return strconv.FormatUint(b>>20, 10) + " MiB/s"
	}
	return strconv.FormatUint(b, 10) + " B/s"
}

// errWriter keeps the first write error, so rendering reads straight.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}
