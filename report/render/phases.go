package render

import (
	"encoding/csv"
	"io"
	"math/bits"
	"strconv"
	"time"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// PhaseRow is one row of the phase table.
type PhaseRow struct {
	Phase     string `json:"phase"`
	ElapsedUs int64  `json:"elapsed_us"`
	BeginNs   int64  `json:"begin_ns"`
	EndNs     int64  `json:"end_ns"`
	Pages     int64  `json:"pages,omitempty"`
	Bytes     int64  `json:"bytes,omitempty"`
	Failed    bool   `json:"failed,omitempty"`
}

// PageSummary is the table's transfer summary; the KiB/s rates are nil
// where the D script prints no line (no bytes or no duration).
type PageSummary struct {
	TotalPages    int64  `json:"total_pages"`
	TotalBytes    int64  `json:"total_bytes"`
	UnpausedPages int64  `json:"unpaused_pages"`
	UnpausedBytes int64  `json:"unpaused_bytes"`
	UnpausedKiBps *int64 `json:"unpaused_kib_per_sec,omitempty"`
	PausedPages   int64  `json:"paused_pages"`
	PausedBytes   int64  `json:"paused_bytes"`
	PausedKiBps   *int64 `json:"paused_kib_per_sec,omitempty"`
}

// PhaseTable is live-migration-times.d's table for one migration side.
type PhaseTable struct {
	MigrationID string       `json:"migration_id"`
	Role        string       `json:"role"`
	Rows        []PhaseRow   `json:"phases"`
	TotalUs     int64        `json:"total_us"`
	Pages       *PageSummary `json:"pages,omitempty"`
	// ReportedByPeer: rebuilt from the destination's record of the source.
	ReportedByPeer bool `json:"reported_by_peer,omitempty"`
	// Cancelled is set when an operator cancelled the migration.
	Cancelled *CancelNote `json:"cancelled,omitempty"`
	// Settings and SettingsChanges are set when settings changed while
	// the migration ran: those it started with, and each change.
	Settings        *model.Settings     `json:"settings,omitempty"`
	SettingsChanges []SettingChangeNote `json:"settings_changes,omitempty"`
}

// CancelNote says where and by whom a migration was cancelled.
type CancelNote struct {
	Phase string `json:"phase,omitempty"`
	By    string `json:"by"`
}

// SettingChangeNote is one setting changed in flight, AfterNs after the
// side's start.
type SettingChangeNote struct {
	model.SettingChange
	AfterNs int64 `json:"after_ns"`
}

// NewPhaseTable computes the table the way the D script does: a row per
// phase that ran, in protocol order, each its (end − begin) ns / 1000
// truncated; TOTAL is the sum of the ns deltas / 1000. The page summary
// (only when pages moved) counts RamPushPrePause as unpaused and
// RamPushPostPause as paused.
func NewPhaseTable(m model.Side) PhaseTable {
	t := PhaseTable{MigrationID: m.ID, Role: m.Role.String(), ReportedByPeer: m.ReportedByPeer}
	if m.Cancelled() {
		t.Cancelled = &CancelNote{Phase: m.ErrorPhase, By: m.CancelledBy}
	}
	if len(m.SettingsChanges) > 0 {
		t.Settings = m.Settings
		for _, c := range m.SettingsChanges {
			var after int64
			if !m.StartTime.IsZero() {
				after = c.Time.Sub(m.StartTime).Nanoseconds()
			}
			t.SettingsChanges = append(t.SettingsChanges, SettingChangeNote{SettingChange: c, AfterNs: after})
		}
	}
	var totalNs int64
	for _, p := range m.Phases {
		d := p.DurationNs()
		totalNs += d
		t.Rows = append(t.Rows, PhaseRow{Phase: p.Phase.String(), ElapsedUs: d / 1000,
			BeginNs: p.BeginNs, EndNs: p.EndNs, Pages: p.Pages, Bytes: p.Bytes, Failed: p.Failed})
	}
	t.TotalUs = totalNs / 1000
	pre, _ := m.Phase(schema.PhaseRamPushPrePause)
	post, _ := m.Phase(schema.PhaseRamPushPostPause)
	if pre.Pages+post.Pages > 0 {
		t.Pages = &PageSummary{
			TotalPages: pre.Pages + post.Pages, TotalBytes: pre.Bytes + post.Bytes,
			UnpausedPages: pre.Pages, UnpausedBytes: pre.Bytes, UnpausedKiBps: kibPerSec(pre.Bytes, pre.DurationNs()),
			PausedPages: post.Pages, PausedBytes: post.Bytes, PausedKiBps: kibPerSec(post.Bytes, post.DurationNs()),
		}
	}
	return t
}

// kibPerSec is the D script's (bytes*1e9/delta)/1024, in 128 bits so large
// transfers do not overflow; nil when either operand is not positive.
func kibPerSec(bytes, deltaNs int64) *int64 {
	if bytes <= 0 || deltaNs <= 0 {
		return nil
	}
	hi, lo := bits.Mul64(uint64(bytes), 1e9)
	if hi >= uint64(deltaNs) {
		return nil // beyond any real rate; the D script would have wrapped
	}
	q, _ := bits.Div64(hi, lo, uint64(deltaNs))
	v := int64(q / 1024)
	return &v
}

// Phases writes the phase table of each migration. Formats: dtrace,
// table, json, csv.
func Phases(w io.Writer, ms []model.Side, f Format) error {
	tables := make([]PhaseTable, len(ms))
	for i := range ms {
		tables[i] = NewPhaseTable(ms[i])
	}
	switch f {
	case FormatDTrace:
		return eachTable(w, tables, writePhasesDTrace)
	case FormatTable:
		return eachTable(w, tables, writePhasesTable)
	case FormatJSON:
		return writeJSON(w, tables)
	case FormatCSV:
		return writePhasesCSV(w, tables)
	}
	return unsupported(f, "phases", FormatDTrace, FormatTable, FormatJSON, FormatCSV)
}

// eachTable writes one table bare, or several each after a heading line
// with a blank line between them.
func eachTable[T interface{ heading() string }](w io.Writer, tables []T, write func(io.Writer, T) error) error {
	for i, t := range tables {
		if len(tables) > 1 {
			sep := ""
			if i > 0 {
				sep = "\n"
			}
			if _, err := io.WriteString(w, sep+t.heading()+"\n"); err != nil {
				return err
			}
		}
		if err := write(w, t); err != nil {
			return err
		}
	}
	return nil
}

func (t PhaseTable) heading() string {
	h := "migration " + t.MigrationID + " " + t.Role
	if t.Cancelled != nil {
		h += " (cancelled)"
	}
	return h
}

// writeSteering writes, under a table, how an operator steered the
// migration: a line per setting changed in flight, and the cancel. The
// D script knows neither, so nothing is written for a migration left
// alone, and its table stays byte for byte the script's.
func writeSteering(ew *ErrWriter, t PhaseTable) {
	if len(t.SettingsChanges) == 0 && t.Cancelled == nil {
		return
	}
	ew.Printf("\n")
	for _, c := range t.SettingsChanges {
		in := ""
		if c.Phase.Valid() {
			in = " in " + c.Phase.String()
		}
		by := ""
		if c.By != "" {
			by = " by " + c.By
		}
		ew.Printf("SETTING CHANGED at +%s%s: %s %s -> %s%s\n", time.Duration(c.AfterNs).Round(time.Microsecond), in,
			c.Setting, model.FormatSetting(c.Setting, c.Old), model.FormatSetting(c.Setting, c.New), by)
	}
	if c := t.Cancelled; c != nil {
		ew.Printf("CANCELLED in %s by %s\n", orUnknownPhase(c.Phase), c.By)
	}
}

func orUnknownPhase(p string) string {
	if p == "" {
		return "an unrecorded phase"
	}
	return p
}

func writePhasesDTrace(w io.Writer, t PhaseTable) error {
	ew := NewErrWriter(w)
	// The widths of the seed's capture (51 columns); propolis later
	// narrowed the script to 46.
	ew.Printf("%-20s %30s\n", "PHASE", "TIME ELAPSED (usec)")
	for _, r := range t.Rows {
		ew.Printf("%-20s %30d\n", r.Phase, r.ElapsedUs)
	}
	ew.Printf("%-20s %30d\n", "TOTAL", t.TotalUs)
	if p := t.Pages; p != nil {
		ew.Printf("\n")
		ew.Printf("%-25s %20d\n", "NPAGES XFERED (total)", p.TotalPages)
		ew.Printf("%-25s %20d\n", "NBYTES XFERED (total)", p.TotalBytes)
		ew.Printf("%-25s %20d\n", "NPAGES XFERED (unpaused)", p.UnpausedPages)
		ew.Printf("%-25s %20d\n", "NBYTES XFERED (unpaused)", p.UnpausedBytes)
		if p.UnpausedKiBps != nil {
			ew.Printf("%-25s %20d\n", "KiB/SEC (unpaused)", *p.UnpausedKiBps)
		}
		ew.Printf("%-25s %20d\n", "NPAGES XFERED (paused)", p.PausedPages)
		ew.Printf("%-25s %20d\n", "NBYTES XFERED (paused)", p.PausedBytes)
		if p.PausedKiBps != nil {
			ew.Printf("%-25s %20d\n", "KiB/SEC (paused)", *p.PausedKiBps)
		}
	}
	writeSteering(ew, t)
	return ew.Err()
}

func writePhasesTable(w io.Writer, t PhaseTable) error {
	rows := make([][]string, 0, len(t.Rows))
	for _, r := range t.Rows {
		status := "ok"
		switch {
		case r.Failed && t.Cancelled != nil && r.Phase == t.Cancelled.Phase:
			status = "CANCELLED"
		case r.Failed:
			status = "FAILED"
		}
		rows = append(rows, []string{r.Phase, itoa(r.ElapsedUs), itoa(r.Pages), itoa(r.Bytes), status})
	}
	footer := []string{"TOTAL", itoa(t.TotalUs), "", "", ""}
	if p := t.Pages; p != nil {
		footer[2], footer[3] = itoa(p.TotalPages), itoa(p.TotalBytes)
	}
	if err := writeTable(w, 1, []string{"PHASE", "TIME ELAPSED (usec)", "PAGES", "BYTES", "STATUS"}, rows, footer); err != nil {
		return err
	}
	if p := t.Pages; p != nil {
		rate := func(v *int64) string {
			if v == nil {
				return "-"
			}
			return itoa(*v)
		}
		if err := writeTable(w, 1, []string{"RAM PUSH", "PAGES", "BYTES", "KiB/SEC"}, [][]string{
			{"unpaused", itoa(p.UnpausedPages), itoa(p.UnpausedBytes), rate(p.UnpausedKiBps)},
			{"paused", itoa(p.PausedPages), itoa(p.PausedBytes), rate(p.PausedKiBps)},
		}, nil); err != nil {
			return err
		}
	}
	ew := NewErrWriter(w)
	writeSteering(ew, t)
	return ew.Err()
}

func writePhasesCSV(w io.Writer, tables []PhaseTable) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"migration_id", "role", "phase", "elapsed_us", "begin_ns", "end_ns", "pages", "bytes", "failed"})
	for _, t := range tables {
		for _, r := range t.Rows {
			cw.Write([]string{t.MigrationID, t.Role, r.Phase, itoa(r.ElapsedUs), itoa(r.BeginNs), itoa(r.EndNs),
				itoa(r.Pages), itoa(r.Bytes), strconv.FormatBool(r.Failed)})
		}
		cw.Write([]string{t.MigrationID, t.Role, "TOTAL", itoa(t.TotalUs), "", "", "", "", ""})
	}
	cw.Flush()
	return cw.Error()
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
