package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/migtrace/migtrace/probes/events"
	"github.com/migtrace/migtrace/probes/uprobe"
	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/tracing/model"
)

// traceTable says which table a `trace` subcommand prints.
type traceTable int

const (
	tracePhases traceTable = iota
	traceAdjustments
)

type traceOptions struct {
	pid    int
	binary string
	count  int
	output *formatFlag
	otlp   bool
}

func newTraceCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "Show live migration tables from a running process's probes (Linux, uprobes)",
		Long: `trace attaches eBPF uprobes to the probe points of a running migtrace
process and prints a table each time a migration in it finishes: the
same tables 'report' rebuilds from traces, for processes that export no
traces at all. The process needs no restart and no flag; probes cost
about a microsecond per hit while attached and nothing measurable after.

trace needs Linux, root (or CAP_BPF and CAP_PERFMON), and a kernel with
BPF ring buffers and attach cookies (5.15 or later).`,
	}
	cmd.AddCommand(
		newTraceTableCommand(tracePhases),
		newTraceTableCommand(traceAdjustments),
	)
	return cmd
}

func newTraceTableCommand(table traceTable) *cobra.Command {
	var o traceOptions
	use, short := "phases", "Print each migration's phase timings as it finishes (live-migration-times.d)"
	if table == traceAdjustments {
		use, short = "adjustments", "Print each incoming migration's time-data adjustments (time-adjustments.d)"
	}
	cmd := &cobra.Command{
		Use:     use + " --pid PID",
		Short:   short,
		Args:    noArgs,
		Example: fmt.Sprintf("  sudo migtrace trace %s --pid $(pidof migtrace) --count 1", use),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "pid"); err != nil {
				return err
			}
			if o.pid <= 0 {
				return usageErrorf("invalid value %d for --pid: want a process id", o.pid)
			}
			if o.count < 0 {
				return usageErrorf("invalid value %d for --count: want 0 (no limit) or more", o.count)
			}
			f := o.output.Format()
			if runtime.GOOS != "linux" {
				return errors.New("trace requires Linux (uprobes)")
			}
			return runTrace(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), table, f, o)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&o.pid, "pid", 0, "`PID` of the migtrace process to trace")
	fl.StringVar(&o.binary, "binary", "", "the process's executable `PATH` (default: /proc/PID/exe)")
	fl.IntVar(&o.count, "count", 0, "exit after `N` migrations (0: until interrupted)")
	fl.BoolVar(&o.otlp, "otlp", false, "also export each migration as spans over OTLP/HTTP to $OTEL_EXPORTER_OTLP_ENDPOINT")
	o.output = addFormatFlag(cmd, render.FormatDTrace, render.FormatTable, render.FormatJSON)
	return cmd
}

// runTrace attaches, then prints a table per finished migration until
// count migrations were shown, ctx ends or the process exits.
func runTrace(ctx context.Context, stdout, stderr io.Writer, table traceTable, f render.Format, o traceOptions) error {
	tr, err := uprobe.Attach(events.Targets(), &uprobe.Options{PID: o.pid, Binary: o.binary})
	if errors.Is(err, uprobe.ErrNoSymbol) {
		return fmt.Errorf("tracing pid %d (is it a migtrace process, or did --binary name another file?): %w", o.pid, err)
	}
	if err != nil {
		return fmt.Errorf("tracing pid %d: %w", o.pid, err)
	}
	defer tr.Close()
	offset, err := events.MonotonicToWall()
	if err != nil {
		return fmt.Errorf("tracing pid %d: %w", o.pid, err)
	}
	var exporter *otlpExporter
	if o.otlp {
		exporter = newOTLPExporter()
	}
	fmt.Fprintf(stderr, "tracing live migration probes in pid %d (%s); Ctrl-C to stop\n", o.pid, tr.Binary())

	b := events.NewBuilder()
	shown, decodeErrors := 0, 0
	for o.count == 0 || shown < o.count {
		recs, err := tr.Read(ctx)
		switch {
		case ctx.Err() != nil:
			return nil // interrupted: a normal way to stop
		case errors.Is(err, uprobe.ErrProcessExited):
			if o.count > 0 {
				return fmt.Errorf("pid %d exited after %d of %d migrations", o.pid, shown, o.count)
			}
			fmt.Fprintf(stderr, "pid %d exited\n", o.pid)
			return nil
		case err != nil:
			return fmt.Errorf("tracing pid %d: %w", o.pid, err)
		}
		for _, r := range recs {
			e, err := events.Decode(r)
			if err != nil {
				if decodeErrors++; decodeErrors == 1 {
					fmt.Fprintf(stderr, "warning: %v (the probe ABI of %s may differ from this migtrace's)\n", err, tr.Binary())
				}
				continue
			}
			m := b.Add(e)
			if m == nil {
				continue
			}
			td := m.Traces(offset)
			if exporter != nil {
				if err := exporter.export(ctx, td); err != nil {
					return err
				}
			}
			printed, err := printTraceTable(stdout, td, table, f)
			if err != nil {
				return err
			}
			if printed {
				shown++
				if o.count == 0 || shown < o.count {
					fmt.Fprintln(stdout)
				}
			}
			if o.count > 0 && shown >= o.count {
				break
			}
		}
	}
	if lost, err := tr.Lost(); err == nil && lost > 0 {
		fmt.Fprintf(stderr, "warning: %d probe records were lost (ring buffer full)\n", lost)
	}
	return nil
}

// printTraceTable renders one migration's traces through report, the same
// path `report` takes from a trace file. The adjustments table covers only
// a destination with time data; printed says whether a table was written.
func printTraceTable(w io.Writer, td ptrace.Traces, table traceTable, f render.Format) (printed bool, err error) {
	ms, err := traceToReport(td)
	if err != nil {
		return false, err
	}
	if table == tracePhases {
		return true, render.Phases(w, ms, f)
	}
	dst := report.WithTimeData(ms)
	if len(dst) == 0 {
		return false, nil
	}
	return true, render.Adjustments(w, dst, f)
}

// traceToReport reads trace data into report's model via OTLP JSON.
func traceToReport(td ptrace.Traces) ([]model.Side, error) {
	var mar ptrace.JSONMarshaler
	line, err := mar.MarshalTraces(td)
	if err != nil {
		return nil, fmt.Errorf("encoding probe spans: %w", err)
	}
	r := otlpread.New()
	if err := r.Read(context.Background(), bytes.NewReader(line), "probes"); err != nil {
		return nil, fmt.Errorf("reading probe spans: %w", err)
	}
	return r.Migrations()
}

// otlpExporter posts trace data to an OTLP/HTTP collector, honouring the
// standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and OTEL_EXPORTER_OTLP_ENDPOINT.
type otlpExporter struct {
	url    string
	client *http.Client
}

func newOTLPExporter() *otlpExporter {
	url := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if url == "" {
		base := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
		if base == "" {
			base = "http://localhost:4318"
		}
		url = strings.TrimRight(base, "/") + "/v1/traces"
	}
	return &otlpExporter{url: url, client: &http.Client{Timeout: 10 * time.Second}}
}

func (e *otlpExporter) export(ctx context.Context, td ptrace.Traces) error {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return fmt.Errorf("encoding OTLP request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("exporting spans to %s: %w", e.url, err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("exporting spans to %s: %w", e.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("exporting spans to %s: %s: %s", e.url, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
