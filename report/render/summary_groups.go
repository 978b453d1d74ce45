package render

import (
	"encoding/csv"
	"io"

	"github.com/migtrace/migtrace/report"
)

type pairSummaryJSON struct {
	report.HostPair
	summaryJSON
}

// SummaryByHostPair writes one summary per host pair (see Summary):
// table, a "SOURCE → DESTINATION" line before each pair's table; json, an
// array of summaries each with its source and destination; csv, one
// table whose rows start with the pair.
func SummaryByHostPair(w io.Writer, ps []report.PairSummary, f Format) error {
	switch f {
	case FormatTable:
		ew := NewErrWriter(w)
		for i, p := range ps {
			if i > 0 {
				ew.Printf("\n")
			}
			ew.Printf("host pair %s\n", p.Pair)
			if ew.Err() == nil {
				if err := writeSummaryTable(w, p.Summary); err != nil {
					return err
				}
			}
		}
		return ew.Err()
	case FormatJSON:
		out := make([]pairSummaryJSON, len(ps))
		for i, p := range ps {
			out[i] = pairSummaryJSON{HostPair: p.Pair, summaryJSON: newSummaryJSON(p.Summary)}
		}
		return writeJSON(w, out)
	case FormatCSV:
		cw := csv.NewWriter(w)
		cw.Write(append([]string{"source", "destination"}, summaryCSVHeader...))
		for _, p := range ps {
			for _, rec := range summaryCSVRecords(p.Summary) {
				cw.Write(append([]string{p.Pair.Source, p.Pair.Destination}, rec...))
			}
		}
		cw.Flush()
		return cw.Error()
	}
	return unsupported(f, "summary", FormatTable, FormatJSON, FormatCSV)
}
