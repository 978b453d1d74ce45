package render

import (
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/migtrace/migtrace/report"
)

// summaryJSON gives PhaseStats readable role and phase names.
type summaryJSON struct {
	Migrations int `json:"migrations"`
	Sides      int `json:"sides"`
	Failed     int `json:"failed"`
	// Cancelled and the settings counts are left out when 0.
	Cancelled       int              `json:"cancelled,omitempty"`
	SettingsChanged int              `json:"settings_changed,omitempty"`
	SettingChanges  map[string]int   `json:"setting_changes,omitempty"`
	Phases          []phaseStatsJSON `json:"phases"`
	Downtime        report.Stats     `json:"downtime"`
	Blackout        report.Stats     `json:"blackout"`
}

type phaseStatsJSON struct {
	Role  string `json:"role"`
	Phase string `json:"phase"`
	report.PhaseStats
}

// Summary writes a fleet summary: per role and phase the count, failures,
// p50/p95/p99/max duration, pages, bytes and rate, with the slowest phase
// of each role flagged; then downtime and blackout. Formats: table, json,
// csv.
func Summary(w io.Writer, s report.Summary, f Format) error {
	switch f {
	case FormatTable:
		return writeSummaryTable(w, s)
	case FormatJSON:
		return writeJSON(w, newSummaryJSON(s))
	case FormatCSV:
		return writeSummaryCSV(w, s)
	}
	return unsupported(f, "summary", FormatTable, FormatJSON, FormatCSV)
}

func newSummaryJSON(s report.Summary) summaryJSON {
	out := summaryJSON{Migrations: s.Migrations, Sides: s.Sides, Failed: s.Failed, Cancelled: s.Cancelled,
		SettingsChanged: s.SettingsChanged, SettingChanges: s.SettingChanges, Downtime: s.Downtime, Blackout: s.Blackout}
	for _, p := range s.Phases {
		out.Phases = append(out.Phases, phaseStatsJSON{Role: p.Role.String(), Phase: p.Phase.String(), PhaseStats: p})
	}
	return out
}

func writeSummaryTable(w io.Writer, s report.Summary) error {
	// Cancellations and changes in flight are mentioned only when there
	// are some, so a summary of plain migrations reads as it always did.
	cancelled := ""
	if s.Cancelled > 0 {
		cancelled = fmt.Sprintf(", %d cancelled", s.Cancelled)
	}
	if _, err := fmt.Fprintf(w, "%d migrations (%d sides, %d failed%s)\n", s.Migrations, s.Sides, s.Failed, cancelled); err != nil {
		return err
	}
	if s.SettingsChanged > 0 {
		names := slices.Sorted(maps.Keys(s.SettingChanges))
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s ×%d", n, s.SettingChanges[n]))
		}
		if _, err := fmt.Fprintf(w, "settings changed in flight on %d sides: %s\n", s.SettingsChanged, strings.Join(parts, ", ")); err != nil {
			return err
		}
	}
	var rows [][]string
	for _, p := range s.Phases {
		var notes []string
		if p.Slowest {
			notes = append(notes, "<- slowest")
		}
		if p.Cancelled > 0 {
			notes = append(notes, fmt.Sprintf("%d cancelled", p.Cancelled))
		}
		flag := strings.Join(notes, "; ")
		rate, bytes := "", ""
		if p.Bytes > 0 {
			bytes = HumanBytes(float64(p.Bytes))
		}
		if p.BytesPerSec > 0 {
			rate = HumanBytes(p.BytesPerSec) + "/s"
		}
		d := p.Durations
		rows = append(rows, []string{p.Role.String(), p.Phase.String(), strconv.Itoa(d.Count), strconv.Itoa(p.Failed),
			HumanDuration(d.P50), HumanDuration(d.P95), HumanDuration(d.P99), HumanDuration(d.Max), bytes, rate, flag})
	}
	for _, x := range []struct {
		role, name string
		st         report.Stats
	}{{"source", "downtime", s.Downtime}, {"destination", "blackout", s.Blackout}} {
		if x.st.Count > 0 {
			rows = append(rows, []string{x.role, x.name, strconv.Itoa(x.st.Count), "",
				HumanDuration(x.st.P50), HumanDuration(x.st.P95), HumanDuration(x.st.P99), HumanDuration(x.st.Max), "", "", ""})
		}
	}
	return writeTable(w, 2, []string{"ROLE", "PHASE", "COUNT", "FAILED", "P50", "P95", "P99", "MAX", "BYTES", "RATE", "NOTE"}, rows, nil)
}

func writeSummaryCSV(w io.Writer, s report.Summary) error {
	cw := csv.NewWriter(w)
	cw.Write(summaryCSVHeader)
	for _, rec := range summaryCSVRecords(s) {
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

var summaryCSVHeader = []string{"role", "phase", "count", "failed", "p50_us", "p95_us", "p99_us", "max_us", "pages", "bytes", "bytes_per_sec", "slowest"}

// summaryCSVRecords are the rows of summary's CSV under summaryCSVHeader.
func summaryCSVRecords(s report.Summary) [][]string {
	var out [][]string
	us := func(ns int64) string { return itoa(ns / 1000) }
	for _, p := range s.Phases {
		d := p.Durations
		out = append(out, []string{p.Role.String(), p.Phase.String(), strconv.Itoa(d.Count), strconv.Itoa(p.Failed),
			us(d.P50), us(d.P95), us(d.P99), us(d.Max), itoa(p.Pages), itoa(p.Bytes),
			strconv.FormatFloat(p.BytesPerSec, 'f', 0, 64), strconv.FormatBool(p.Slowest)})
	}
	for _, x := range []struct {
		role, name string
		st         report.Stats
	}{{"source", "downtime", s.Downtime}, {"destination", "blackout", s.Blackout}} {
		if x.st.Count > 0 {
			out = append(out, []string{x.role, x.name, strconv.Itoa(x.st.Count), "", us(x.st.P50), us(x.st.P95), us(x.st.P99), us(x.st.Max), "", "", "", ""})
		}
	}
	return out
}

// HumanDuration prints ns with three significant-ish digits: "121µs",
// "61.4ms", "9.403s".
func HumanDuration(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < 0:
		return "-" + HumanDuration(-ns)
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", ns/1000)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(ns)/1e6)
	default:
		return fmt.Sprintf("%.3fs", float64(ns)/1e9)
	}
}

// HumanBytes prints a byte count in binary units: "812.0 MiB".
func HumanBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for b >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", b)
	}
	return fmt.Sprintf("%.1f %s", b, units[i])
}
