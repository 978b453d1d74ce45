package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/report/timeline"
	"github.com/migtrace/migtrace/tracing/model"
)

func newReportTimelineCommand(in *reportInput) *cobra.Command {
	var outFile string
	cmd := &cobra.Command{
		Use:   "timeline [FILE|-]...",
		Short: "Draw each migration: both sides' phases on one time axis, the blackout, pre-copy and time data",
		Long: `timeline draws one picture per migration in the input, to look at rather than
read: both sides' phases as bars on one time axis, each labelled with its
duration; the guest's blackout as a band from the source's pause to the
destination's resume, with the clock-offset error bound on its end; the source's
downtime; the pre-copy rounds (pages sent, pages still dirty); the
destination's time-data stages with their TSC adjustments; and a failed
migration's failing phase and error. A caption summarises the numbers (slowest
phase, blackout against downtime); it is a summary, not a diagnosis.

The axis is the source's wall clock. Each phase's bar is its host's monotonic
(begin, end), placed on wall time by its span's recorded wall times; the
destination's clock is shifted onto the source's by the recorded clock-offset
estimate, or drawn as if the clocks agree when there is none ("offset
unknown").

-o svg (default) writes one standalone SVG document; -o html one
self-contained page (no scripts, nothing fetched) holding the picture and the
phase, adjustment and check reports. --output-file writes to a file instead of
stdout.` + reportInputHelp,
		Example: `  migtrace demo --trace-file demo.jsonl
  migtrace report timeline -o html --output-file timeline.html demo.jsonl
  migtrace report timeline --migration 5eed0359-... src.jsonl dst.jsonl > timeline.svg`,
	}
	cmd.Flags().StringVar(&outFile, "output-file", "", "write the picture to `FILE` instead of stdout")
	formats := []render.Format{render.FormatSVG, render.FormatHTML}
	return in.command(cmd, 0, formats, func(cmd *cobra.Command, _ []string, ms []model.Side, format render.Format) error {
		tls, err := timeline.Build(ms)
		if err != nil {
			return err
		}
		// Rendered whole before anything is written, so a failure leaves
		// no half-written file.
		var buf bytes.Buffer
		if format == render.FormatHTML {
			err = render.TimelineHTML(&buf, ms, tls)
		} else {
			err = render.TimelineSVG(&buf, tls)
		}
		if err != nil {
			return err
		}
		if outFile == "" {
			_, err = cmd.OutOrStdout().Write(buf.Bytes())
			return err
		}
		if err := os.WriteFile(outFile, buf.Bytes(), 0o644); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("--output-file %s: %w", outFile, err)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d migration(s))\n", outFile, len(tls))
		return nil
	})
}
