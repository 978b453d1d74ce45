package render

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// StageRow is one EVENT row of the adjustments table.
type StageRow struct {
	Event      string `json:"event"` // "Migration", "Propolis" (the userspace stage) or "Kernel"
	Stage      string `json:"stage"` // schema.Stage.String
	DurationUs int64  `json:"duration_us"`
	GuestTSC   uint64 `json:"guest_tsc"`
	BootHrtime int64  `json:"boot_hrtime"`
}

// AdjustmentRow is an [adjustment] row: the change from one stage to the
// next, computed as the D script does (TSC difference modulo 2^64).
type AdjustmentRow struct {
	From            string `json:"from"`
	To              string `json:"to"`
	GuestTSCDelta   uint64 `json:"guest_tsc_delta"`
	BootHrtimeDelta int64  `json:"boot_hrtime_delta"`
}

// AdjustmentTable is time-adjustments.d's table for one destination.
type AdjustmentTable struct {
	MigrationID string          `json:"migration_id"`
	Role        string          `json:"role"`
	GuestFreq   uint64          `json:"guest_freq_hz"`
	UptimeUs    int64           `json:"uptime_us"`
	TotalUs     int64           `json:"total_us"`
	Stages      []StageRow      `json:"stages"`
	Adjustments []AdjustmentRow `json:"adjustments"`
}

// NewAdjustmentTable computes the table from the three time-data stages:
// the frequency is the source's, the uptime the userspace stage's, and
// TOTAL TIME the sum of the stage durations in ns / 1000. It fails,
// wrapping report.ErrNoTimeData, when a stage is missing.
func NewAdjustmentTable(m model.Side) (AdjustmentTable, error) {
	var missing []string
	for _, s := range schema.Stages {
		if !m.Stage(s).Present {
			missing = append(missing, s.String())
		}
	}
	if len(missing) > 0 {
		return AdjustmentTable{}, fmt.Errorf("migration %s %s: %w: missing %s", m.ID, m.Role, report.ErrNoTimeData, strings.Join(missing, ", "))
	}
	mig, usr := m.Stage(schema.StageMigration), m.Stage(schema.StageUserspace)
	t := AdjustmentTable{MigrationID: m.ID, Role: m.Role.String(), GuestFreq: mig.GuestFreq, UptimeUs: usr.GuestUptimeNs / 1000}
	var totalNs int64
	for i, s := range schema.Stages {
		v := m.Stage(s)
		totalNs += v.DurationNs
		t.Stages = append(t.Stages, StageRow{Event: s.Label(), Stage: s.String(),
			DurationUs: v.DurationNs / 1000, GuestTSC: v.GuestTSC, BootHrtime: v.BootHrtime})
		if i > 0 {
			prev := m.Stage(schema.Stages[i-1])
			t.Adjustments = append(t.Adjustments, AdjustmentRow{From: schema.Stages[i-1].Label(), To: s.Label(),
				GuestTSCDelta: v.GuestTSC - prev.GuestTSC, BootHrtimeDelta: v.BootHrtime - prev.BootHrtime})
		}
	}
	t.TotalUs = totalNs / 1000
	return t, nil
}

// Adjustments writes the time-adjustments table of each migration (each
// must be a destination with its time data). Formats: dtrace, table,
// json, csv.
func Adjustments(w io.Writer, ms []model.Side, f Format) error {
	switch f {
	case FormatDTrace, FormatTable, FormatJSON, FormatCSV:
	default:
		return unsupported(f, "adjustments", FormatDTrace, FormatTable, FormatJSON, FormatCSV)
	}
	tables := make([]AdjustmentTable, len(ms))
	for i := range ms {
		t, err := NewAdjustmentTable(ms[i])
		if err != nil {
			return err
		}
		tables[i] = t
	}
	switch f {
	case FormatDTrace:
		return eachTable(w, tables, writeAdjustmentsDTrace)
	case FormatTable:
		return eachTable(w, tables, writeAdjustmentsTable)
	case FormatJSON:
		return writeJSON(w, tables)
	default:
		return writeAdjustmentsCSV(w, tables)
	}
}

func (t AdjustmentTable) heading() string { return "migration " + t.MigrationID + " " + t.Role }

func writeAdjustmentsDTrace(w io.Writer, t AdjustmentTable) error {
	ew := NewErrWriter(w)
	ew.Printf("%15s %20s %20s\n", "GUEST FREQ (Hz)", "UPTIME (usec)", "TOTAL TIME (usec)")
	ew.Printf("%15d %20d %20d\n", t.GuestFreq, t.UptimeUs, t.TotalUs)
	ew.Printf("\n")
	ew.Printf("%-10s %20s %20s %20s\n", "EVENT", "DURATION (usec)", "GUEST TSC", "BOOT HRTIME")
	for i, s := range t.Stages {
		if i > 0 {
			a := t.Adjustments[i-1]
			// Two spaces: the script's layout, which leaves the
			// DURATION column empty.
			ew.Printf("%-30s  %20d %20d\n", "[adjustment]", a.GuestTSCDelta, a.BootHrtimeDelta)
		}
		ew.Printf("%-10s %20d %20d %20d\n", s.Event, s.DurationUs, s.GuestTSC, s.BootHrtime)
	}
	return ew.Err()
}

func writeAdjustmentsTable(w io.Writer, t AdjustmentTable) error {
	if err := writeTable(w, 0, []string{"GUEST FREQ (Hz)", "UPTIME (usec)", "TOTAL TIME (usec)"},
		[][]string{{utoa(t.GuestFreq), itoa(t.UptimeUs), itoa(t.TotalUs)}}, nil); err != nil {
		return err
	}
	var rows [][]string
	for i, s := range t.Stages {
		if i > 0 {
			a := t.Adjustments[i-1]
			rows = append(rows, []string{"[adjustment]", "", utoa(a.GuestTSCDelta), itoa(a.BootHrtimeDelta)})
		}
		rows = append(rows, []string{s.Event, itoa(s.DurationUs), utoa(s.GuestTSC), itoa(s.BootHrtime)})
	}
	return writeTable(w, 1, []string{"EVENT", "DURATION (usec)", "GUEST TSC", "BOOT HRTIME"}, rows, nil)
}

func writeAdjustmentsCSV(w io.Writer, tables []AdjustmentTable) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"migration_id", "role", "guest_freq_hz", "uptime_us", "total_us", "event", "duration_us", "guest_tsc", "boot_hrtime"})
	for _, t := range tables {
		head := []string{t.MigrationID, t.Role, utoa(t.GuestFreq), itoa(t.UptimeUs), itoa(t.TotalUs)}
		for i, s := range t.Stages {
			if i > 0 {
				a := t.Adjustments[i-1]
				cw.Write(append(head[:5:5], "[adjustment]", "", utoa(a.GuestTSCDelta), itoa(a.BootHrtimeDelta)))
			}
			cw.Write(append(head[:5:5], s.Event, itoa(s.DurationUs), utoa(s.GuestTSC), itoa(s.BootHrtime)))
		}
	}
	cw.Flush()
	return cw.Error()
}

func utoa(v uint64) string { return strconv.FormatUint(v, 10) }
