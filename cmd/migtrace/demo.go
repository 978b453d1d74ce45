package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

func newDemoCommand() *cobra.Command {
	var (
		vmf    vmFlags
		tune   tuningFlags
		capf   capacityFlags
		tel    telemetryFlags
		warmup time.Duration
		output *formatFlag
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Migrate a simulated VM between two servers on loopback and print both tables",
		Long: `demo runs a source and a destination instance server in this process on
loopback, boots a simulated VM on the source (its guest keeps dirtying
memory and reading its TSC), migrates it live through the servers' HTTP
API, writes the trace, and prints the tables that 'migtrace report' rebuilds
from that trace: each side's phase table and the destination's time
adjustment table ("Propolis" is the userspace adjustment stage).

Set OTEL_EXPORTER_OTLP_ENDPOINT to also send the trace to a collector or
Jaeger.`,
		Example: `  migtrace demo
  migtrace demo --memory 1GiB --dirty-rate 64MiB --trace-file demo.jsonl`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			format := output.Format()
			log, err := tel.logger(cmd)
			if err != nil {
				return err
			}
			limits, err := capf.limits(cmd.Flags())
			if err != nil {
				return err
			}
			backend, spec, err := vmf.build(limits)
			if err != nil {
				return err
			}
			mcfg := tune.config()
			mcfg.Limits = limits
			if tel.traceFile == "" {
				f, err := os.CreateTemp("", "migtrace-demo-*.jsonl")
				if err != nil {
					return fmt.Errorf("creating a trace file: %w", err)
				}
				f.Close()
				tel.traceFile = f.Name()
				defer os.Remove(tel.traceFile)
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			tele, err := tel.setup(ctx, "migtrace-demo", true)
			if err != nil {
				return err
			}
			defer shutdownTelemetry(tele, log)

			var addrs [2]string
			var servers [2]*server.Server
			done := make(chan error, 2)
			for i, name := range []string{"source", "destination"} {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					return fmt.Errorf("listening on loopback: %w", err)
				}
				addrs[i] = ln.Addr().String()
				srv, err := server.New(ctx, server.Config{
					Name: name, Address: addrs[i], Backend: backend, Boot: i == 0, Spec: spec,
					Migration: mcfg, Tracer: tele.Tracer(), Metrics: tele.Instruments(),
					MetricsHandler: tele.MetricsHandler(), Flush: tele.ForceFlush, Logger: log,
				})
				if err != nil {
					ln.Close()
					return err
				}
				servers[i] = srv
				go func() { done <- srv.Serve(ctx, ln) }()
			}
			defer func() {
				cancel()
				for range servers {
					if serr := <-done; serr != nil && !errors.Is(serr, net.ErrClosed) && err == nil {
						err = serr
					}
				}
			}()
			fmt.Fprintf(tel.stderr(cmd), "source %s (booted, %s, dirtying %s/s), destination %s\n",
				addrs[0], render.HumanBytes(float64(spec.MemoryBytes)), render.HumanBytes(float64(vmf.dirtyRate.bytesPerSec)), addrs[1])
			// Let the guest run and dirty memory before it moves.
			select {
			case <-time.After(warmup):
			case <-ctx.Done():
				return ctx.Err()
			}

			hc := &http.Client{Timeout: 10 * time.Second}
			dst := server.NewClient(addrs[1], hc, false)
			id, err := dst.StartMigration(ctx, server.MigrateRequest{Source: addrs[0]})
			if err != nil {
				return fmt.Errorf("starting the migration: %w", err)
			}
			st, err := followMigration(ctx, dst, id, tel.stderr(cmd))
			if err != nil {
				return err
			}
			if err := tele.ForceFlush(ctx); err != nil {
				return fmt.Errorf("flushing the trace: %w", err)
			}
			ms, err := readMigration(ctx, tel.traceFile, id)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			m := st.Migration
			outcome := migrationOutcome{ID: id, Result: m.Result, Error: m.Error, ErrorPhase: m.ErrorPhase}
			var lateErr error
			if m.Result == schema.ResultSuccess {
				outcome.VMRunsOn = addrs[1]
				outcome.MemoryAfterHandoff, lateErr = lateVerdict(m.Detail, addrs[1])
				if lateErr != nil {
					outcome.Error = lateErr.Error()
				}
			}
			if err := printMigration(out, ms, format, outcome); err != nil {
				return err
			}
			if m.Result != schema.ResultSuccess {
				return fmt.Errorf("%s", m.Error)
			}
			if d := m.Detail; d != nil {
				if line := render.TSCContinuityLine(d.Continuity); line != "" {
					// With -o json stdout holds the one document.
					lw := out
					if format == render.FormatJSON {
						lw = tel.stderr(cmd)
					}
					fmt.Fprintln(lw, line)
				}
			}
			fmt.Fprintf(tel.stderr(cmd), "trace: %s (read it with 'migtrace report phases %s')\n", tel.traceFile, tel.traceFile)
			return lateErr
		},
	}
	f := cmd.Flags()
	vmf.register(f)
	capf.register(f)
	tune.register(f)
	tel.register(f)
	f.DurationVar(&warmup, "warmup", 300*time.Millisecond, "let the guest run this long before migrating")
	output = addFormatFlag(cmd, tableFormats...)
	return cmd
}

// readMigration reads both sides of migration id back from a trace file.
func readMigration(ctx context.Context, path, id string) ([]model.Side, error) {
	r := otlpread.New()
	if err := r.ReadFile(ctx, path); err != nil {
		return nil, err
	}
	all, err := r.Migrations()
	if err != nil {
		return nil, err
	}
	return report.Select(all, report.Selection{MigrationID: id})
}
