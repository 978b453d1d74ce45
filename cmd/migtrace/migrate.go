package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

func newMigrateCommand() *cobra.Command {
	var (
		from, to string
		output   *formatFlag
		timeout  time.Duration
		tlsf     tlsFlags
	)
	cmd := &cobra.Command{
		Use:   "migrate --from ADDR --to ADDR",
		Short: "Migrate the VM of one instance server to another",
		Long: `migrate asks the server at --to to pull the VM from the server at --from
(both are the servers' --listen addresses), shows live progress — a
progress bar on a terminal, plain lines otherwise — and prints the phase
tables of both sides and the time-adjustment table at the end.

Exit status: 0 when the VM runs on --to, 1 when the migration failed (the
message names the phase; the VM keeps running on --from), 2 for bad flags.`,
		Example: `  migtrace migrate --from 127.0.0.1:7001 --to 127.0.0.1:7002`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "from", "to"); err != nil {
				return err
			}
			for _, a := range []struct{ flag, v string }{{"--from", from}, {"--to", to}} {
				if err := checkAddr(a.flag, a.v, false); err != nil {
					return err
				}
			}
			format := output.Format()
			hc, secure, err := tlsf.httpClient(10 * time.Second)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			dst := server.NewClient(to, hc, secure)
			id, err := dst.StartMigration(ctx, server.MigrateRequest{Source: from})
			if err != nil {
				return fmt.Errorf("starting the migration: %w", err)
			}
			st, err := followMigration(ctx, dst, id, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			m := st.Migration
			if d := m.Detail; d != nil {
				// The source's own record is complete; what the
				// destination holds of it stops at the Finish message.
				ms := []model.Side{*d}
				srcSt, err := server.NewClient(from, hc, secure).Instance(ctx)
				if err == nil && srcSt.Migration != nil && srcSt.Migration.ID == id && srcSt.Migration.Detail != nil {
					ms = []model.Side{*srcSt.Migration.Detail, *d}
				} else if len(d.SourcePhases) > 0 {
					ms = []model.Side{model.PeerSource(d, nil), *d}
				}
				if err := printMigrationTables(cmd.OutOrStdout(), ms, format); err != nil {
					return err
				}
			}
			if m.Result != schema.ResultSuccess {
				return fmt.Errorf("%s", m.Error)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "source server `ADDR` (its --listen)")
	f.StringVar(&to, "to", "", "destination server `ADDR` (its --listen)")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (0 = never)")
	tlsf.register(f)
	output = addFormatFlag(cmd, tableFormats...)
	return cmd
}

// tableFormats are the formats of the tables migrate and demo print.
var tableFormats = []render.Format{render.FormatDTrace, render.FormatTable, render.FormatJSON}

// followMigration polls the destination until migration id ends, showing
// progress on w.
func followMigration(ctx context.Context, dst *server.Client, id string, w io.Writer) (server.InstanceStatus, error) {
	tty := isTerminal(w)
	var (
		bar       *progressbar.ProgressBar
		lastKey   string
		lastPrint time.Time
	)
	defer func() {
		if bar != nil {
			_ = bar.Finish()
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := dst.Instance(ctx)
		if err != nil {
			return st, fmt.Errorf("following the migration: %w", err)
		}
		m := st.Migration
		if m == nil || m.ID != id {
			return st, fmt.Errorf("following the migration: %s no longer reports migration %s", dst.Addr(), id)
		}
		if m.Result != server.ResultRunning {
			if bar != nil {
				_ = bar.Finish()
				bar = nil
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "migration %s: %s\n", id, m.Result)
			return st, nil
		}
		if p := m.Progress; p != nil {
			key := fmt.Sprintf("%s/%d", p.Phase, p.Round)
			if tty {
				if key != lastKey {
					if bar != nil {
						_ = bar.Finish()
						fmt.Fprintln(w)
					}
					bar = progressbar.NewOptions64(int64(max(p.RoundPages, 1)), progressbar.OptionSetWriter(w),
						progressbar.OptionSetDescription(fmt.Sprintf("%-16s round %d", p.Phase, p.Round)),
						progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
						progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond))
				}
				_ = bar.Set64(int64(p.RoundDone))
			} else if key != lastKey || time.Since(lastPrint) >= time.Second {
				fmt.Fprintf(w, "%s round %d: %d/%d pages, %s sent, %s left, %s/s, ETA %s\n",
					p.Phase, p.Round, p.RoundDone, p.RoundPages, render.HumanBytes(float64(p.Bytes)),
					render.HumanBytes(float64(p.RemainingBytes)), render.HumanBytes(p.Rate),
					time.Duration(p.ETANs).Round(time.Millisecond))
				lastPrint = time.Now()
			}
			lastKey = key
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("following the migration: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// printMigrationTables prints each side's phase table, then the
// destination's adjustment table.
func printMigrationTables(w io.Writer, ms []model.Side, f render.Format) error {
	if len(ms) == 0 {
		return errors.New("no migration to print")
	}
	if err := render.Phases(w, ms, f); err != nil {
		return err
	}
	dst := report.WithTimeData(ms)
	if len(dst) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	return render.Adjustments(w, dst, f)
}

func newStatusCommand() *cobra.Command {
	var (
		addr   string
		output *formatFlag
		tlsf   tlsFlags
	)
	cmd := &cobra.Command{
		Use:   "status --server ADDR",
		Short: "Show an instance server's state and last migration",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "server"); err != nil {
				return err
			}
			hc, secure, err := tlsf.httpClient(10 * time.Second)
			if err != nil {
				return err
			}
			st, err := server.NewClient(addr, hc, secure).Instance(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output.Format() == render.FormatJSON {
				return writeJSON(out, st)
			}
			ew := render.NewErrWriter(out)
			ew.Printf("name:      %s\nstate:     %s\nbackend:   %s\nmemory:    %s\nguest TSC: %d\n",
				st.Name, st.State, st.Backend, render.HumanBytes(float64(st.MemoryBytes)), st.GuestTSC)
			if m := st.Migration; m != nil {
				ew.Printf("migration: %s (%s, peer %s) %s, phase %s\n", m.ID, m.Role, m.Peer, m.Result, m.Phase)
				if m.Error != "" {
					ew.Printf("error:     %s\n", m.Error)
				}
				if d := m.Detail; d != nil && m.Result == schema.ResultSuccess {
					if b := d.Blackout; b != nil {
						bound := "unknown"
						if b.ErrorNs != nil {
							bound = time.Duration(*b.ErrorNs).String()
						}
						ew.Printf("blackout:  %v (± %s)\n", time.Duration(b.Ns), bound)
					}
					if d.DowntimeNs > 0 {
						ew.Printf("downtime:  %v\n", time.Duration(d.DowntimeNs))
					}
				}
			}
			return ew.Err()
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "server", "", "instance server `ADDR` (its --listen)")
	output = addFormatFlag(cmd, render.FormatText, render.FormatJSON)
	tlsf.register(f)
	return cmd
}
