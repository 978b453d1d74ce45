package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// cliBy is how the CLI names itself to a server that records who
// cancelled or changed a migration.
const cliBy = "cli"

// settingsFlags are a migration's own settings, on migrate (all six) and
// migrate-set (those that may change in flight). Only flags given are
// sent: the rest keep the servers' flags, or the current values.
type settingsFlags struct {
	maxBandwidth   rateFlag
	downtimeTarget positiveDurationFlag
	maxRounds      positiveIntFlag
	autoConverge   bool
	skewCorrection bool
	skipChecksum   bool
	startOnly      bool
}

func (f *settingsFlags) register(fs *pflag.FlagSet, startOnly bool) {
	f.startOnly = startOnly
	fs.Var(&f.maxBandwidth, "max-bandwidth", "cap this migration's traffic at `RATE` per second (e.g. 100MiB); 0 = no cap (default: the source's --max-bandwidth)")
	fs.Var(&f.downtimeTarget, "downtime-target", "stop pre-copy when the rest fits in this `DURATION` at the measured bandwidth (default: the source's flag)")
	fs.Var(&f.maxRounds, "max-rounds", "most pre-copy rounds before pausing (default: the source's flag)")
	fs.BoolVar(&f.autoConverge, "auto-converge", false, "throttle the guest when pre-copy rounds stop converging (--auto-converge=false turns it off)")
	if startOnly {
		fs.BoolVar(&f.skewCorrection, "clock-skew-correction", false, "correct the migration delta by the measured wall-clock offset between the hosts (default: the destination's flag)")
		fs.BoolVar(&f.skipChecksum, "skip-memory-checksum", false, "the source does not checksum guest memory at pause (default: the source's flag)")
	}
}

// settings returns the settings the flags given set.
func (f *settingsFlags) settings(fs *pflag.FlagSet) migrate.Settings {
	var s migrate.Settings
	if fs.Changed("max-bandwidth") {
		v := int64(f.maxBandwidth.bytesPerSec)
		s.MaxBandwidth = &v
	}
	if fs.Changed("downtime-target") {
		v := int64(f.downtimeTarget.d)
		s.DowntimeTargetNs = &v
	}
	if fs.Changed("max-rounds") {
		v := int64(f.maxRounds.n)
		s.MaxRounds = &v
	}
	if fs.Changed("auto-converge") {
		s.AutoConverge = &f.autoConverge
	}
	if f.startOnly && fs.Changed("clock-skew-correction") {
		s.ClockSkewCorrection = &f.skewCorrection
	}
	if f.startOnly && fs.Changed("skip-memory-checksum") {
		s.SkipMemoryChecksum = &f.skipChecksum
	}
	return s
}

// check refuses what pflag let through and the servers would refuse.
func (f *settingsFlags) check(s migrate.Settings) error {
	if err := s.Validate(); err != nil {
		return usageErrorf("%v", err)
	}
	return nil
}

// currentMigration returns the id of the migration --migration names,
// or of the one the server at c runs now.
func currentMigration(ctx context.Context, c *server.Client, id string) (string, error) {
	if id != "" {
		if _, err := migrate.ParseID(id); err != nil {
			return "", usageErrorf("--migration %q: %v", id, err)
		}
		return id, nil
	}
	st, err := c.Instance(ctx)
	if err != nil {
		return "", err
	}
	m := st.Migration
	switch {
	case m == nil:
		return "", fmt.Errorf("%s has run no migration; give --migration ID", c.Addr())
	case m.Result != server.ResultRunning:
		return "", fmt.Errorf("%s runs no migration now: its last, %s, ended (%s); give --migration ID to name it anyway", c.Addr(), m.ID, m.Result)
	}
	return m.ID, nil
}

// refusal is what a server's refusal says, without the method and URL.
func refusal(err error) string {
	var apiErr *server.APIError
	if errors.As(err, &apiErr) && apiErr.Reason != "" {
		return fmt.Sprintf("%s: %s", apiErr.Status, apiErr.Reason)
	}
	return err.Error()
}

func newCancelCommand() *cobra.Command {
	var (
		addr, id string
		wait     time.Duration
		output   *formatFlag
		tlsf     tlsFlags
	)
	cmd := &cobra.Command{
		Use:   "cancel --server ADDR [--migration ID]",
		Short: "Cancel a running migration before its handoff",
		Long: `cancel asks the server at --server, either side of the migration, to
cancel it: by default the one it runs now, else --migration ID. The server
tells the other side, and both end the migration as a failure would — the
source's guest keeps running, with its memory and dirty log intact, and
the destination discards what it built — recorded as cancelled, with the
phase and who asked, in the trace and the metrics.

From the handoff on (the source has sent Finish, or the destination has
said it is ready to run the guest) a cancel is refused: the guest may
already be the destination's.

cancel then waits up to --wait for the migration to end and says how.
Exit status: 0 when it ended cancelled, 1 when the cancel was refused or
the migration ended otherwise, 2 for bad flags.`,
		Example: `  migtrace cancel --server 127.0.0.1:7002`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "server"); err != nil {
				return err
			}
			if err := checkAddr("--server", addr, false); err != nil {
				return err
			}
			hc, secure, err := tlsf.httpClient(10 * time.Second)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c := server.NewClient(addr, hc, secure)
			id, err := currentMigration(ctx, c, id)
			if err != nil {
				return err
			}
			resp, err := c.Cancel(ctx, id, server.CancelRequest{By: cliBy})
			if err != nil {
				return fmt.Errorf("cancelling migration %s at %s: %s", id, addr, refusal(err))
			}
			ew := render.NewErrWriter(cmd.ErrOrStderr())
			ew.Printf("migration %s: cancel accepted by the %s in phase %s (by %s; peer: %s)\n",
				id, resp.Role, orUnknown(resp.Phase), resp.By, orUnknown(resp.Peer))
			if wait <= 0 {
				return printCancelled(cmd.OutOrStdout(), output.Format(), resp, nil)
			}
			wctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			st, err := awaitEnd(wctx, c, id)
			if err != nil {
				return fmt.Errorf("migration %s: cancel accepted, but it had not ended after %v: %w", id, wait, err)
			}
			return printCancelled(cmd.OutOrStdout(), output.Format(), resp, st.Migration)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "server", "", "either server of the migration, `ADDR` (its --listen)")
	f.StringVar(&id, "migration", "", "the migration `ID` (default: the server's running migration)")
	f.DurationVar(&wait, "wait", time.Minute, "wait this long for the migration to end (0: do not wait)")
	output = addFormatFlag(cmd, render.FormatText, render.FormatJSON)
	tlsf.register(f)
	return cmd
}

// awaitEnd polls the server until migration id has ended there.
func awaitEnd(ctx context.Context, c *server.Client, id string) (server.InstanceStatus, error) {
	for {
		st, err := c.Instance(ctx)
		if err == nil && (st.Migration == nil || st.Migration.ID != id || st.Migration.Result != server.ResultRunning) {
			if st.Migration == nil || st.Migration.ID != id {
				return st, fmt.Errorf("%s no longer reports migration %s", c.Addr(), id)
			}
			return st, nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return st, err
			}
			return st, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// printCancelled says how a cancelled migration ended (m, nil when cancel
// did not wait), as text or one JSON document, and fails unless it ended
// cancelled.
func printCancelled(w io.Writer, f render.Format, resp server.CancelResponse, m *server.MigrationStatus) error {
	out := struct {
		server.CancelResponse
		Result     string `json:"result,omitempty"`
		ErrorPhase string `json:"error_phase,omitempty"`
		Error      string `json:"error,omitempty"`
	}{CancelResponse: resp}
	if m != nil {
		out.Result, out.ErrorPhase, out.Error = m.Result, m.ErrorPhase, m.Error
	}
	if f == render.FormatJSON {
		if err := writeJSON(w, out); err != nil {
			return err
		}
	} else if m != nil {
		ew := render.NewErrWriter(w)
		ew.Printf("migration %s: %s", resp.ID, m.Result)
		if m.ErrorPhase != "" {
			ew.Printf(" in phase %s", m.ErrorPhase)
		}
		ew.Printf("\n")
		if err := ew.Err(); err != nil {
			return err
		}
	}
	if m != nil && m.Result != schema.ResultCancelled {
		return fmt.Errorf("migration %s ended %s, not cancelled: %s", resp.ID, m.Result, m.Error)
	}
	return nil
}

func newMigrateSetCommand() *cobra.Command {
	var (
		addr, id string
		sf       settingsFlags
		output   *formatFlag
		tlsf     tlsFlags
	)
	cmd := &cobra.Command{
		Use:   "migrate-set --server ADDR [--migration ID] [--max-bandwidth RATE] [--downtime-target D] [--max-rounds N] [--auto-converge]",
		Short: "Change a running migration's settings",
		Long: `migrate-set changes the settings of a running migration: by default the
one the server at --server runs now, else --migration ID. Either server of
the migration takes it; the source, which sends the pages, applies it (a
destination forwards it): a new bandwidth cap at once, even mid-frame, the
downtime target, round limit and auto-converge at the next pre-copy
decision. Each change is a migration.settings.changed event on both
sides' traces, with the old and new values.

An invalid value is refused and nothing changes. Exit status: 0 when the
source applied the change, 1 when a server refused it, 2 for bad flags.`,
		Example: `  migtrace migrate-set --server 127.0.0.1:7002 --max-bandwidth 1GiB
  migtrace migrate-set --server 127.0.0.1:7001 --downtime-target 100ms --max-rounds 4`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "server"); err != nil {
				return err
			}
			if err := checkAddr("--server", addr, false); err != nil {
				return err
			}
			settings := sf.settings(cmd.Flags())
			if settings.IsZero() {
				return usageErrorf("nothing to change: give one or more of --max-bandwidth, --downtime-target, --max-rounds, --auto-converge")
			}
			if err := sf.check(settings); err != nil {
				return err
			}
			hc, secure, err := tlsf.httpClient(10 * time.Second)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c := server.NewClient(addr, hc, secure)
			id, err := currentMigration(ctx, c, id)
			if err != nil {
				return err
			}
			resp, err := c.UpdateSettings(ctx, id, server.SettingsRequest{Settings: settings, By: cliBy})
			if err != nil {
				return fmt.Errorf("changing migration %s's settings at %s: %s", id, addr, refusal(err))
			}
			out := cmd.OutOrStdout()
			if output.Format() == render.FormatJSON {
				return writeJSON(out, resp)
			}
			ew := render.NewErrWriter(out)
			if len(resp.Changes) == 0 {
				ew.Printf("migration %s: nothing changed (the settings were already so)\n", id)
			}
			for _, ch := range resp.Changes {
				ew.Printf("migration %s: %s %s -> %s (in %s)\n", id, ch.Setting,
					model.FormatSetting(ch.Setting, ch.Old), model.FormatSetting(ch.Setting, ch.New), orUnknown(phaseName(ch.Phase)))
			}
			ew.Printf("settings now: %s\n", formatSettings(resp.Settings))
			return ew.Err()
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "server", "", "either server of the migration, `ADDR` (its --listen)")
	f.StringVar(&id, "migration", "", "the migration `ID` (default: the server's running migration)")
	sf.register(f, false)
	output = addFormatFlag(cmd, render.FormatText, render.FormatJSON)
	tlsf.register(f)
	return cmd
}

func phaseName(p schema.Phase) string {
	if !p.Valid() {
		return ""
	}
	return p.String()
}

// formatSettings is st on one line, for people.
func formatSettings(st model.Settings) string {
	var parts []string
	for _, name := range []string{schema.SettingMaxBandwidth, schema.SettingDowntimeTarget, schema.SettingMaxRounds,
		schema.SettingAutoConverge, schema.SettingClockSkewCorrection, schema.SettingSkipMemoryChecksum} {
		v, _ := st.Value(name)
		parts = append(parts, strings.TrimSuffix(strings.ReplaceAll(name, "_", "-"), "-ns")+" "+model.FormatSetting(name, v))
	}
	return strings.Join(parts, ", ")
}

// cancelOnInterrupt cancels migration id at the destination dst for a
// migrate interrupted by Ctrl-C, and says so on w. A refusal (the
// handoff has begun) is reported, not returned: migrate then follows the
// migration to its end either way.
func cancelOnInterrupt(dst *server.Client, id string, w io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := dst.Cancel(ctx, id, server.CancelRequest{By: cliBy + " (Ctrl-C on migrate)"})
	var apiErr *server.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusConflict:
		fmt.Fprintf(w, "\nmigration %s: not cancelled: %s; following it to its end\n", id, apiErr.Reason)
	case err != nil:
		fmt.Fprintf(w, "\nmigration %s: cancelling: %v; following it to its end\n", id, err)
	default:
		fmt.Fprintf(w, "\nmigration %s: cancelling in phase %s (Ctrl-C again to stop waiting)\n", id, orUnknown(resp.Phase))
	}
}
