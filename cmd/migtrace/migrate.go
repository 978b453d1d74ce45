package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
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
		detach   bool
		sf       settingsFlags
		tlsf     tlsFlags
	)
	cmd := &cobra.Command{
		Use:   "migrate --from ADDR --to ADDR",
		Short: "Migrate the VM of one instance server to another",
		Long: `migrate asks the server at --to to pull the VM from the server at --from
(both are the servers' --listen addresses), shows live progress — a
progress bar on a terminal, plain lines otherwise — and prints the phase
tables of both sides and the time-adjustment table at the end.

With -o json, stdout holds exactly one JSON document once the migration
has started, whatever its outcome: its id, result, error, where the VM
runs (when a server confirmed it), and the tables. Progress and errors go
to stderr.

The settings flags (--max-bandwidth, --downtime-target, --max-rounds,
--auto-converge, --clock-skew-correction, --skip-memory-checksum) apply
to this migration only, over the servers' own flags, which stay the
defaults; the source refuses invalid ones. 'migtrace migrate-set'
changes the first four while it runs.

Ctrl-C cancels the migration (as 'migtrace cancel' does) and waits for
it to end; a second Ctrl-C stops waiting. From the handoff on a cancel is
refused and the migration completes. With --detach, migrate starts the
migration, prints its id and returns without following it.

Exit status: 0 when the VM runs on --to (or, with --detach, once the
migration started), 1 when the migration failed or was cancelled (the
message names the phase and, after asking --from, whether the VM keeps
running there), 2 for bad flags.`,
		Example: `  migtrace migrate --from 127.0.0.1:7001 --to 127.0.0.1:7002
  migtrace migrate --from 127.0.0.1:7001 --to 127.0.0.1:7002 --max-bandwidth 100MiB --max-rounds 4
  id=$(migtrace migrate --from 127.0.0.1:7001 --to 127.0.0.1:7002 --detach)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "from", "to"); err != nil {
				return err
			}
			for _, a := range []struct{ flag, v string }{{"--from", from}, {"--to", to}} {
				if err := checkAddr(a.flag, a.v, false); err != nil {
					return err
				}
			}
			settings := sf.settings(cmd.Flags())
			if err := sf.check(settings); err != nil {
				return err
			}
			format := output.Format()
			hc, secure, err := tlsf.httpClient(10 * time.Second)
			if err != nil {
				return err
			}
			// Ctrl-C (cmd.Context ending) cancels the migration rather
			// than abandoning it: following it goes on until it ends.
			interrupted := cmd.Context()
			ctx, stop := context.WithCancel(context.WithoutCancel(interrupted))
			defer stop()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			dst := server.NewClient(to, hc, secure)
			req := server.MigrateRequest{Source: from}
			if !settings.IsZero() {
				req.Settings = &settings
			}
			startCtx, cancelStart := context.WithCancel(ctx)
			defer cancelStart()
			go func() {
				select {
				case <-interrupted.Done():
					cancelStart()
				case <-startCtx.Done():
				}
			}()
			id, err := dst.StartMigration(startCtx, req)
			if err != nil {
				return fmt.Errorf("starting the migration: %w", err)
			}
			if detach {
				if format == render.FormatJSON {
					return writeJSON(cmd.OutOrStdout(), migrationOutcome{ID: id, Result: server.ResultRunning})
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), id)
				return err
			}
			following := make(chan struct{})
			defer close(following)
			go interruptCancels(interrupted, following, stop, dst, id, cmd.ErrOrStderr())
			st, err := followMigration(ctx, dst, id, cmd.ErrOrStderr())
			var lost *destinationLostError
			if err != nil && !errors.As(err, &lost) {
				return err
			}
			// The source's own record is complete, and only the source
			// can say whether the VM still runs there.
			srcSt, srcErr := askSource(ctx, server.NewClient(from, hc, secure), id)
			var srcDetail *model.Side
			if srcErr == nil && srcSt.Migration != nil && srcSt.Migration.ID == id {
				srcDetail = srcSt.Migration.Detail
			}
			out := migrationOutcome{ID: id}
			var ms []model.Side
			if lost != nil {
				out.Result, out.ErrorPhase = schema.ResultFailure, lost.phase
				if m := srcSt.Migration; srcDetail != nil && m.ErrorPhase != "" {
					out.ErrorPhase = m.ErrorPhase
				}
				out.Error = fmt.Sprintf("migration %s failed in phase %s: the destination %s stopped answering (%v)",
					id, orUnknown(out.ErrorPhase), to, lost.err)
				if srcDetail != nil && srcSt.Migration.Error != "" {
					out.Error += "; the source says: " + srcSt.Migration.Error
				}
				if srcDetail != nil {
					ms = []model.Side{*srcDetail}
				}
			} else {
				m := st.Migration
				out.Result, out.Error, out.ErrorPhase = m.Result, m.Error, m.ErrorPhase
				if d := m.Detail; d != nil {
					// What the destination holds of the source's record
					// stops at the Finish message.
					ms = []model.Side{*d}
					if srcDetail != nil {
						ms = []model.Side{*srcDetail, *d}
					} else if len(d.SourcePhases) > 0 {
						ms = []model.Side{model.PeerSource(d, nil), *d}
					}
				}
			}
			var lateErr error
			if out.Result == schema.ResultSuccess {
				out.VMRunsOn = to
				if m := st.Migration; m != nil {
					out.MemoryAfterHandoff, lateErr = lateVerdict(m.Detail, to)
					if lateErr != nil {
						out.Error = lateErr.Error()
					}
				}
			} else {
				where, verified := whereIsTheVM(from, id, srcSt, srcErr)
				out.Error += "; " + where
				if verified {
					out.VMRunsOn = from
				}
			}
			if err := printMigration(cmd.OutOrStdout(), ms, format, out); err != nil {
				return err
			}
			if out.Result != schema.ResultSuccess {
				return errors.New(out.Error)
			}
			return lateErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "source server `ADDR` (its --listen)")
	f.StringVar(&to, "to", "", "destination server `ADDR` (its --listen)")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (0 = never)")
	f.BoolVar(&detach, "detach", false, "start the migration, print its id and return without following it")
	sf.register(f, true)
	tlsf.register(f)
	output = addFormatFlag(cmd, tableFormats...)
	return cmd
}

// interruptCancels cancels migration id when interrupted ends (Ctrl-C)
// while migrate follows it, and stops the following (stop) on a second
// interrupt. It returns when following closes.
func interruptCancels(interrupted context.Context, following <-chan struct{}, stop context.CancelFunc, dst *server.Client, id string, w io.Writer) {
	select {
	case <-interrupted.Done():
	case <-following:
		return
	}
	// Registered before the cancel, so that a second Ctrl-C is never
	// lost to the default action or to the first handler.
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	cancelOnInterrupt(dst, id, w)
	select {
	case <-again:
		fmt.Fprintf(w, "migration %s: no longer waiting for it to end\n", id)
		stop()
	case <-following:
	}
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
	// Polls start every 10 ms and slow to every 100 ms: a small guest now
	// migrates in tens of milliseconds, which one 100 ms poll would miss.
	wait := 10 * time.Millisecond
	var phase string // the last phase the destination reported
	for {
		st, err := dst.Instance(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return st, fmt.Errorf("following the migration: %w", ctx.Err())
			}
			if bar != nil {
				_ = bar.Finish()
				bar = nil
				fmt.Fprintln(w)
			}
			return st, &destinationLostError{phase: phase, err: err}
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
		phase = m.Phase
		if p := m.Progress; p != nil {
			phase = p.Phase
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
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// migrationOutcome is how a migration ended, for the one JSON document
// migrate and demo print with -o json.
type migrationOutcome struct {
	ID         string `json:"migration_id"`
	Result     string `json:"result"`
	Error      string `json:"error,omitempty"`
	ErrorPhase string `json:"error_phase,omitempty"`
	// VMRunsOn is the server a server confirmed runs the VM, if any.
	VMRunsOn string `json:"vm_runs_on,omitempty"`
	// MemoryAfterHandoff is the destination's comparison of all guest
	// memory made after the handoff (a schema.MemoryLate* value), when
	// its memory verification made one.
	MemoryAfterHandoff string `json:"memory_after_handoff,omitempty"`
}

// lateVerdict reads the destination's comparison of guest memory made
// after the handoff. The migration succeeded, and the guest runs at
// runsOn, whatever it says; anything but a match is an error all the
// same, so that migrate and demo never exit 0 on memory that differed
// from the source's or that could not be compared.
func lateVerdict(d *model.Side, runsOn string) (string, error) {
	if d == nil || d.MemoryLate == nil {
		return "", nil
	}
	switch l := d.MemoryLate; l.Result {
	case schema.MemoryLateMatch:
		return l.Result, nil
	case schema.MemoryLateMismatch:
		return l.Result, fmt.Errorf("GUEST MEMORY DIFFERS: the guest runs on %s, but the comparison after the handoff found its memory different from the source's at the pause", runsOn)
	default:
		return l.Result, fmt.Errorf("guest memory not verified: the guest runs on %s, but the comparison after the handoff could not be made: %s", runsOn, l.Error)
	}
}

// printMigration prints the migration's tables (see printMigrationTables)
// or, with -o json, one document: the outcome and the tables.
func printMigration(w io.Writer, ms []model.Side, f render.Format, out migrationOutcome) error {
	if f != render.FormatJSON {
		if len(ms) == 0 {
			return nil
		}
		return printMigrationTables(w, ms, f)
	}
	doc := struct {
		migrationOutcome
		Phases      []render.PhaseTable      `json:"phase_tables"`
		Adjustments []render.AdjustmentTable `json:"adjustment_tables"`
	}{migrationOutcome: out, Phases: []render.PhaseTable{}, Adjustments: []render.AdjustmentTable{}}
	for _, m := range ms {
		doc.Phases = append(doc.Phases, render.NewPhaseTable(m))
	}
	for _, m := range report.WithTimeData(ms) {
		t, err := render.NewAdjustmentTable(m)
		if err != nil {
			return err
		}
		doc.Adjustments = append(doc.Adjustments, t)
	}
	return writeJSON(w, doc)
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

// destinationLostError: the destination stopped answering while a
// migration was under way; phase is the last one it reported.
type destinationLostError struct {
	phase string
	err   error
}

func (e *destinationLostError) Error() string {
	return fmt.Sprintf("following the migration: the destination stopped answering in phase %s: %v", orUnknown(e.phase), e.err)
}

func (e *destinationLostError) Unwrap() error { return e.err }

func orUnknown(phase string) string {
	if phase == "" {
		return "unknown"
	}
	return phase
}

// sourceSettleWait bounds how long migrate waits for the source to end its
// side of a failed migration: longer than the default I/O timeout (30 s),
// after which a source gives up on a destination that went silent.
const sourceSettleWait = 45 * time.Second

// askSource returns the source's status once its side of migration id has
// ended (or sourceSettleWait has passed), so that what it says about the
// VM is final.
func askSource(ctx context.Context, src *server.Client, id string) (server.InstanceStatus, error) {
	if ctx.Err() != nil {
		// The caller's time is up; one quick question still tells the
		// user where the VM is.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
	}
	deadline := time.Now().Add(sourceSettleWait)
	for {
		st, err := src.Instance(ctx)
		if err != nil {
			return st, err
		}
		m := st.Migration
		ongoing := st.State == server.StateMigratingOut && m != nil && m.ID == id && m.Result == server.ResultRunning
		if !ongoing || time.Now().After(deadline) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// whereIsTheVM says where the VM of a failed migration id is, from the
// source's status; verified is true only when the source says it runs
// the VM.
func whereIsTheVM(srcAddr, id string, st server.InstanceStatus, err error) (where string, verified bool) {
	if err != nil {
		return fmt.Sprintf("could not ask the source %s where the VM is: %v", srcAddr, err), false
	}
	m := st.Migration
	ours := m != nil && m.ID == id
	switch {
	case st.State == server.StateRunning:
		return "the VM keeps running on " + srcAddr, true
	case st.State == server.StateMigratingOut && ours:
		return fmt.Sprintf("the source %s still reports this migration in phase %s, so where the VM ends up is not known yet", srcAddr, orUnknown(m.Phase)), false
	case st.State == server.StateMigratingOut && m != nil:
		return fmt.Sprintf("the VM runs on %s, which is migrating it out in another migration, %s", srcAddr, m.ID), true
	case st.State == server.StateMigrated && ours:
		return fmt.Sprintf("the source %s handed the VM off in this migration, so it no longer runs there", srcAddr), false
	}
	return fmt.Sprintf("the source %s is %s, not running the VM", srcAddr, st.State), false
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
				if p := m.Progress; p != nil && m.Result == server.ResultRunning {
					ew.Printf("progress:  %s round %d, %d/%d pages, %s moved, %s/s\n", p.Phase, p.Round,
						p.RoundDone, p.RoundPages, render.HumanBytes(float64(p.Bytes)), render.HumanBytes(p.Rate))
				}
				if m.Settings != nil {
					ew.Printf("settings:  %s\n", formatSettings(*m.Settings))
				}
				if m.CancelledBy != "" {
					ew.Printf("cancelled: by %s\n", m.CancelledBy)
				}
				if m.Error != "" {
					ew.Printf("error:     %s\n", m.Error)
				}
				if m.Handoff != "" {
					note := ""
					if st.State == server.StateHandoffPending {
						note = " (pending: the guest is paused here until the peer answers, or 'migtrace resolve' settles it)"
					}
					ew.Printf("handoff:   %s%s\n", m.Handoff, note)
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
					if l := d.MemoryLate; l != nil {
						note := ""
						switch l.Result {
						case schema.MemoryLateMismatch:
							note = ": GUEST MEMORY DIFFERS from the source's at the pause"
						case schema.MemoryLateUnavailable:
							note = ": not verified (" + l.Error + ")"
						}
						ew.Printf("memory:    compared after the handoff, %s%s\n", l.Result, note)
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
