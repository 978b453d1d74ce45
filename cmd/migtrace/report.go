package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// reportInput holds the flags every report subcommand shares.
type reportInput struct {
	jaegerURL   string
	traceID     string
	migrationID string
	role        string
	search      jaegerSearch // summary and diagnose
}

func newReportCommand() *cobra.Command {
	in := &reportInput{}
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Rebuild the DTrace tables, summaries and checks from migration traces",
		Long: `report reads the traces migtrace emits — OTLP JSON Lines files (--trace-file, or
the OpenTelemetry Collector's file exporter), '-' for stdin, or a Jaeger query
service — and rebuilds what propolis's D scripts print, after the fact and from
any host.

By default every side (source and destination) of every migration in the input
is reported, in start order; --migration and --role select. With several
selected, each table follows a "migration ID ROLE" line; with one, the table is
bare so it diffs cleanly against an old DTrace capture.

Exit status: 0 on success, 1 on unreadable input or (check) a migration not
verified clean, 2 on a missing or malformed flag.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown report %q: want phases, adjustments, summary, check or diagnose", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	f := cmd.PersistentFlags()
	f.StringVar(&in.jaegerURL, "jaeger", "", "read the trace from the Jaeger query service at `URL` (e.g. http://localhost:16686)")
	f.StringVar(&in.traceID, "trace-id", "", "trace `ID` to fetch with --jaeger (32 hex digits)")
	f.StringVar(&in.migrationID, "migration", "", "report only the migration with this `ID`")
	f.StringVar(&in.role, "role", "", "report only this side: source or destination")
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{"source", "destination"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("migration", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("trace-id", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("jaeger", cobra.NoFileCompletions)

	cmd.AddCommand(
		newReportPhasesCommand(in),
		newReportAdjustmentsCommand(in),
		newReportSummaryCommand(in),
		newReportCheckCommand(in),
		newReportTimelineCommand(in),
		newReportDiagnoseCommand(in),
	)
	return cmd
}

// tableFormats4 are the formats of the phase and adjustment tables.
var tableFormats4 = []render.Format{render.FormatDTrace, render.FormatTable, render.FormatJSON, render.FormatCSV}

// command completes a report subcommand: -o over formats, the input and
// selection flags (role defaults to and is limited to onlyRole, when
// set), and a RunE that loads the selected sides and hands them to run.
func (in *reportInput) command(cmd *cobra.Command, onlyRole schema.Role, formats []render.Format,
	run func(cmd *cobra.Command, args []string, ms []model.Side, format render.Format) error) *cobra.Command {
	output := addFormatFlag(cmd, formats...)
	cmd.ValidArgsFunction = reportFileCompletion
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		sel, err := in.selection(onlyRole, onlyRole)
		if err != nil {
			return err
		}
		ms, err := in.load(cmd.Context(), cmd, args, sel)
		if err != nil {
			return err
		}
		return run(cmd, args, ms, output.Format())
	}
	return cmd
}

// selection validates the selection flags; defaultRole applies when
// --role is not given, and a role the command cannot use is refused.
func (in *reportInput) selection(defaultRole schema.Role, onlyRole schema.Role) (report.Selection, error) {
	sel := report.Selection{MigrationID: in.migrationID, Role: defaultRole}
	if in.role != "" {
		r, err := schema.ParseRole(in.role)
		if err != nil {
			return sel, usageErrorf("--role: %v", err)
		}
		if onlyRole != 0 && r != onlyRole {
			return sel, usageErrorf("--role %s: this report covers only the %s, which records the time data", r, onlyRole)
		}
		sel.Role = r
	}
	return sel, nil
}

// load validates the input flags and reads every input into migrations,
// then applies sel.
func (in *reportInput) load(ctx context.Context, cmd *cobra.Command, args []string, sel report.Selection) ([]model.Side, error) {
	if err := in.checkJaegerFlags(cmd); err != nil {
		return nil, err
	}
	if in.traceID != "" {
		if err := otlpread.ValidTraceID(in.traceID); err != nil {
			return nil, usageErrorf("--trace-id: %v", err)
		}
	}
	if len(args) == 0 && in.jaegerURL == "" {
		return nil, usageErrorf("no input: give trace FILEs, - for stdin, or --jaeger URL --trace-id ID")
	}
	stdinUsed := false
	r := otlpread.New()
	for _, a := range args {
		if a == "-" {
			if stdinUsed {
				return nil, usageErrorf("'-' (stdin) given twice")
			}
			stdinUsed = true
			if err := r.Read(ctx, cmd.InOrStdin(), "stdin"); err != nil {
				return nil, err
			}
			continue
		}
		if err := r.ReadFile(ctx, a); err != nil {
			return nil, err
		}
	}
	if in.search.service != "" {
		if err := in.readSearch(ctx, cmd, r); err != nil {
			return nil, err
		}
	} else if in.jaegerURL != "" {
		if err := r.ReadJaeger(ctx, in.jaegerURL, in.traceID); err != nil {
			return nil, err
		}
	}
	all, err := r.Migrations()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", reportInputName(args, in), err)
	}
	ms, err := report.Select(all, sel)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		if m.ReportedByPeer {
			// On stderr, so stdout still diffs cleanly against captures.
			fmt.Fprintf(cmd.ErrOrStderr(), "note: migration %s source: its own spans are not in the input; phases rebuilt from the destination's record of them\n", m.ID)
		}
	}
	return ms, nil
}

func reportInputName(args []string, in *reportInput) string {
	names := append([]string(nil), args...)
	if in.jaegerURL != "" {
		names = append(names, in.jaegerName())
	}
	for i, n := range names {
		if n == "-" {
			names[i] = "stdin"
		}
	}
	return strings.Join(names, ", ")
}

const reportInputHelp = `
Input: FILE... (OTLP JSON Lines; '-' for stdin) and/or --jaeger URL --trace-id ID.`

func newReportPhasesCommand(in *reportInput) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "phases [FILE|-]...",
		Short: "The live-migration-times.d table: time per phase, pages and bytes",
		Long: `phases prints propolis's live-migration-times.d table for each selected side:
PHASE / TIME ELAPSED (usec), a row per phase that ran in protocol order, each
(end - begin) of the host's monotonic clock in ns / 1000; TOTAL is the sum of
the ns deltas / 1000. When pages moved (the source) the page summary follows:
pages and bytes in total, before the pause (RamPushPrePause) and during it
(RamPushPostPause), and the KiB/s of each.

-o dtrace (default) uses the layout of the capture in propolis PR #359, column
for column.` + reportInputHelp,
		Example: `  migtrace report phases trace.jsonl
  migtrace report phases --role source --migration 5eed0359-... trace.jsonl
  migtrace report phases --jaeger http://localhost:16686 --trace-id 0af7651916cd43dd8448eb211c80319c`,
	}
	return in.command(cmd, 0, tableFormats4, func(cmd *cobra.Command, _ []string, ms []model.Side, format render.Format) error {
		if err := report.RequirePhases(ms); err != nil {
			return err
		}
		return render.Phases(cmd.OutOrStdout(), ms, format)
	})
}

func newReportAdjustmentsCommand(in *reportInput) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "adjustments [FILE|-]...",
		Short: "The time-adjustments.d table: guest TSC and boot_hrtime at each time-data stage",
		Long: `adjustments prints propolis's time-adjustments.d table for each destination
(the side that imports and adjusts the guest's time data): GUEST FREQ (Hz) /
UPTIME (usec) / TOTAL TIME (usec), then EVENT / DURATION (usec) / GUEST TSC /
BOOT HRTIME for the three stages, with the [adjustment] between them.

The rows keep the labels operators know from the D script:
  Migration  the source's time data as received; its duration is the
             wall-clock migration delta.
  Propolis   the userspace stage: migtrace's own adjustment (guest TSC +=
             delta x freq; boot_hrtime rebased on the destination's hrtime);
             its duration runs until the write to the VMM.
  Kernel     the VMM's correction for the latency between that write and its
             receipt.
TOTAL TIME is the sum of the three durations in ns / 1000.

Destinations whose migration failed before the time data was imported are
skipped unless named with --migration.` + reportInputHelp,
		Example: `  migtrace report adjustments trace.jsonl
  migtrace report adjustments -o json --migration 5eed0359-... trace.jsonl`,
	}
	return in.command(cmd, schema.RoleDestination, tableFormats4, func(cmd *cobra.Command, args []string, ms []model.Side, format render.Format) error {
		if in.migrationID == "" {
			ms = report.WithTimeData(ms)
			if len(ms) == 0 {
				return fmt.Errorf("%s: %w: no destination in the input imported time data", reportInputName(args, in), report.ErrNoTimeData)
			}
		}
		return render.Adjustments(cmd.OutOrStdout(), ms, format)
	})
}

func newReportSummaryCommand(in *reportInput) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "summary [FILE|-]...",
		Short: "Phase-time percentiles, downtime, blackout and RAM rates over many migrations",
		Long: `summary aggregates every selected side of every migration in the inputs: per
role and phase the count, failures, p50/p95/p99/max duration (nearest rank),
pages, bytes and rate, with the slowest phase (highest median) of each role
flagged; then the source's downtime and the destination's blackout.

--group-by host-pair summarises the migrations of each source instance →
destination instance pair apart.` + reportInputHelp + searchHelp,
		Example: `  migtrace report summary traces/*.jsonl
  migtrace report summary --jaeger http://localhost:16686 --service migtrace --since 24h --group-by host-pair`,
	}
	formats := []render.Format{render.FormatTable, render.FormatJSON, render.FormatCSV}
	groupBy := addGroupByFlag(cmd)
	in.addSearchFlags(cmd)
	return in.command(cmd, 0, formats, func(cmd *cobra.Command, _ []string, ms []model.Side, format render.Format) error {
		if groupBy.value == groupHostPair {
			return render.SummaryByHostPair(cmd.OutOrStdout(), report.SummarizeByHostPair(ms), format)
		}
		return render.Summary(cmd.OutOrStdout(), report.Summarize(ms), format)
	})
}

func newReportCheckCommand(in *reportInput) *cobra.Command {
	var allowFailed, strict bool
	cmd := &cobra.Command{
		Use:   "check [FILE|-]...",
		Short: "Verify each migration from its trace: structure, clock adjustments, continuity",
		Long: `check verifies each migration in the input from the evidence its trace holds,
over every side of it present (both, when given both hosts' traces). It
recomputes every derived value from the values recorded, without running the
code that made them, and checks the trace itself. The rules:
` + checkRulesHelp() + `
A rule whose evidence the input lacks (a side absent, an attribute not
recorded) is "not verified", never taken as passed: check names each such rule
and why, on the OK line or a "not verified:" line (-o json: not_verified). It
prints one OK line per clean migration, else a FAIL line per violation
(migration, side, rule, expected vs got) or an INCOMPLETE line when part of a
side is missing, then notes such as an ignored TSC offset.

Exit status: 0 when every migration is clean; 1 on any violation, an
incomplete side, a failed migration (unless --allow-failed), or with --strict
any rule not verified; 2 on a missing or malformed flag.` + reportInputHelp,
		Example: `  migtrace report check src.jsonl dst.jsonl
  migtrace report check --allow-failed -o json dst.jsonl`,
	}
	cmd.Flags().BoolVar(&allowFailed, "allow-failed", false, "a failed migration is a note, not a failure (rules its failure left without evidence are not verified)")
	cmd.Flags().BoolVar(&strict, "strict", false, "fail unless every rule was verified on both sides")
	formats := []render.Format{render.FormatText, render.FormatJSON}
	return in.command(cmd, 0, formats, func(cmd *cobra.Command, _ []string, ms []model.Side, format render.Format) error {
		results := report.Check(ms, report.Options{AllowFailed: allowFailed})
		if err := render.Check(cmd.OutOrStdout(), results, format); err != nil {
			return err
		}
		violations, failing, incomplete, unverified := 0, 0, 0, 0
		for _, r := range results {
			v := len(r.Violations())
			violations += v
			if v > 0 {
				failing++
			} else if !r.OK() {
				incomplete++
			}
			if len(r.NotVerified) > 0 {
				unverified++
			}
		}
		var why []string
		if violations > 0 {
			why = append(why, fmt.Sprintf("%d violation(s) in %d migration(s)", violations, failing))
		}
		if incomplete > 0 {
			why = append(why, fmt.Sprintf("%d migration(s) incomplete", incomplete))
		}
		if strict && unverified > 0 {
			why = append(why, fmt.Sprintf("--strict: %d migration(s) with rules not verified", unverified))
		}
		if len(why) > 0 {
			return fmt.Errorf("check failed: %s", strings.Join(why, "; "))
		}
		return nil
	})
}

// checkRulesHelp lists report.Rules for check's help.
func checkRulesHelp() string {
	rows := make([][2]string, len(report.Rules))
	for i, r := range report.Rules {
		rows[i] = [2]string{r.Name, "[" + r.Of + "] " + r.Holds}
	}
	return helpRules(rows)
}

// reportFileCompletion offers trace files.
func reportFileCompletion(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"jsonl", "json"}, cobra.ShellCompDirectiveFilterFileExt
}
