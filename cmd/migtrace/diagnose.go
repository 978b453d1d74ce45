package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/tracing/model"
)

// jaegerSearch holds the flags of a trace search in Jaeger, which summary
// and diagnose take instead of --trace-id to read many migrations.
type jaegerSearch struct {
	service string
	since   optionalDuration
	limit   positiveIntFlag
}

// optionalDuration and optionalRate are flags with no default: help
// shows none rather than "0s".
type optionalDuration struct{ positiveDurationFlag }

func (f *optionalDuration) String() string {
	if f.d == 0 {
		return ""
	}
	return f.positiveDurationFlag.String()
}

type optionalRate struct{ rateFlag }

func (f *optionalRate) String() string {
	if f.bytesPerSec == 0 {
		return ""
	}
	return f.rateFlag.String()
}

// defaultSearchLimit is Jaeger's num_traces when --limit is not given:
// a migration is one or two traces, so about a hundred migrations.
const defaultSearchLimit = 200

// addSearchFlags gives cmd --service, --since and --limit.
func (in *reportInput) addSearchFlags(cmd *cobra.Command) {
	in.search.limit.n = defaultSearchLimit
	f := cmd.Flags()
	f.StringVar(&in.search.service, "service", "", "with --jaeger: read every trace of service `NAME` (service.name; migtrace's default is \"migtrace\") in the --since window")
	f.Var(&in.search.since, "since", "with --service: search traces that started within this `DURATION` before now (e.g. 24h)")
	f.Var(&in.search.limit, "limit", "with --service: read at most `N` traces, the most recent (a migration is one or two)")
	_ = cmd.RegisterFlagCompletionFunc("service", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("since", cobra.NoFileCompletions)
	_ = cmd.RegisterFlagCompletionFunc("limit", cobra.NoFileCompletions)
}

// checkJaegerFlags validates --jaeger with --trace-id or a search.
func (in *reportInput) checkJaegerFlags(cmd *cobra.Command) error {
	searchable := cmd.Flags().Lookup("service") != nil
	switch {
	case !searchable && (in.jaegerURL == "") != (in.traceID == ""):
		return usageErrorf("--jaeger and --trace-id go together")
	case in.search.service != "" && in.traceID != "":
		return usageErrorf("--trace-id reads one trace, --service searches many: give one of them")
	case in.jaegerURL == "" && (in.traceID != "" || in.search.service != ""):
		return usageErrorf("--trace-id and --service read from Jaeger: give --jaeger URL too")
	case in.jaegerURL != "" && in.traceID == "" && in.search.service == "":
		return usageErrorf("--jaeger needs --trace-id ID, or --service NAME --since DURATION")
	case in.search.service != "" && in.search.since.d == 0:
		return usageErrorf("--service needs --since DURATION: how far back to search")
	case in.search.service == "" && (cmd.Flags().Changed("since") || cmd.Flags().Changed("limit")):
		return usageErrorf("--since and --limit go with --jaeger URL --service NAME")
	}
	return nil
}

// readSearch runs the Jaeger trace search into r, noting on stderr when
// --limit may have cut it short.
func (in *reportInput) readSearch(ctx context.Context, cmd *cobra.Command, r *otlpread.Reader) error {
	end := time.Now()
	q := otlpread.SearchQuery{Service: in.search.service, Start: end.Add(-in.search.since.d), End: end, Limit: in.search.limit.n}
	n, err := r.SearchJaeger(ctx, in.jaegerURL, q)
	if err != nil {
		return err
	}
	if n >= q.Limit {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: Jaeger returned %d traces, the --limit: older migrations in the last %v may be missing; raise --limit\n", n, in.search.since.d)
	}
	return nil
}

func (in *reportInput) jaegerName() string {
	if in.search.service != "" {
		return fmt.Sprintf("Jaeger service %s (last %v)", in.search.service, in.search.since.d)
	}
	return "Jaeger trace " + in.traceID
}

func newReportDiagnoseCommand(in *reportInput) *cobra.Command {
	var (
		maxBandwidth   optionalRate
		downtimeTarget optionalDuration
		maxRounds      positiveIntFlag
	)
	cmd := &cobra.Command{
		Use:   "diagnose [FILE|-]...",
		Short: "Why each migration took its time and its downtime: the cause, its evidence, what to change",
		Long: `diagnose names, per migration, the dominant cause of its total time and of the
guest's pause (the blackout when the destination's record is in the input,
else the source's downtime), with the numbers it rests on and what to change.
It reads both sides of a migration when both are in the input; times are on
the destination's clock when its record is there (it dials the source and
resumes the guest), else the source's.

A part "dominates" when it takes at least half of the time. The causes, in the
order they are tried:
` + causeRulesHelp() + `
The settings a migration ran with (max bandwidth, downtime target, max rounds)
are not in its trace yet: each diagnosis lists them under "not recorded", and
the rules that would use them go by what the rounds show instead. Give them
with --max-bandwidth, --downtime-target and --max-rounds if you know them.

-o json prints an array of objects: migration, role, result, sides, total_ns,
downtime_ns, blackout_ns, cause, why, downtime_cause, downtime_why, evidence
(an object of named numbers, the unit at the end of each name), suggestion
and not_recorded.

Exit status: 0 when every migration was diagnosed (whatever its cause), 1 on
unreadable input, 2 on a missing or malformed flag.` + reportInputHelp + searchHelp,
		Example: `  migtrace report diagnose src.jsonl dst.jsonl
  migtrace report diagnose --max-bandwidth 100MiB -o json trace.jsonl
  migtrace report diagnose --jaeger http://localhost:16686 --service migtrace --since 24h`,
	}
	f := cmd.Flags()
	f.Var(&maxBandwidth, "max-bandwidth", "the `RATE` the migrations were capped at (0 = no cap), when their traces do not record it")
	f.Var(&downtimeTarget, "downtime-target", "the downtime `TARGET` the migrations ran with, when their traces do not record it")
	f.Var(&maxRounds, "max-rounds", "the most pre-copy rounds, `N`, the migrations were allowed, when their traces do not record it")
	in.addSearchFlags(cmd)
	formats := []render.Format{render.FormatText, render.FormatJSON}
	return in.command(cmd, 0, formats, func(cmd *cobra.Command, _ []string, ms []model.Side, format render.Format) error {
		var opts report.DiagnoseOptions
		if f.Changed("max-bandwidth") {
			v := int64(maxBandwidth.bytesPerSec)
			opts.Assumed.MaxBandwidth = &v
		}
		if f.Changed("downtime-target") {
			v := downtimeTarget.d
			opts.Assumed.DowntimeTarget = &v
		}
		if f.Changed("max-rounds") {
			v := int64(maxRounds.n)
			opts.Assumed.MaxRounds = &v
		}
		return render.Diagnose(cmd.OutOrStdout(), report.Diagnose(ms, opts), format)
	})
}

const searchHelp = `
Or --jaeger URL --service NAME --since DURATION [--limit N]: every trace of the
service that started in the window, through Jaeger's trace search (API v3).`

// causeRulesHelp lists report.CauseRules for diagnose's help.
func causeRulesHelp() string {
	rows := make([][2]string, len(report.CauseRules))
	for i, r := range report.CauseRules {
		rows[i] = [2]string{string(r.Cause), r.Rule}
	}
	return helpRules(rows)
}

// helpRules lists named rules for help text, each wrapped to 80 columns
// under its name.
func helpRules(rows [][2]string) string {
	const indent, width = 22, 80
	var b strings.Builder
	for _, r := range rows {
		line := fmt.Sprintf("  %-*s", indent-2, r[0])
		if len(r[0]) >= indent-2 {
			// A name too long for its column gets a line of its own.
			b.WriteString(strings.TrimRight(line, " ") + "\n")
			line = strings.Repeat(" ", indent)
		}
		for _, w := range strings.Fields(r[1]) {
			if len(line)+1+len(w) > width && len(line) > indent {
				b.WriteString(strings.TrimRight(line, " ") + "\n")
				line = strings.Repeat(" ", indent)
			}
			if !strings.HasSuffix(line, " ") {
				line += " "
			}
			line += w
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// groupHostPair is summary's --group-by value for host pairs.
const groupHostPair = "host-pair"

// groupByFlag is summary's --group-by, checked when parsed so that a bad
// value is a usage error before any input is read.
type groupByFlag struct{ value string }

func (f *groupByFlag) String() string { return f.value }
func (f *groupByFlag) Type() string   { return "GROUP" }
func (f *groupByFlag) Set(s string) error {
	if s != groupHostPair {
		return fmt.Errorf("want %s", groupHostPair)
	}
	f.value = s
	return nil
}

func addGroupByFlag(cmd *cobra.Command) *groupByFlag {
	g := &groupByFlag{}
	cmd.Flags().Var(g, "group-by", "summarise each `GROUP` apart: host-pair (source instance → destination instance)")
	_ = cmd.RegisterFlagCompletionFunc("group-by", cobra.FixedCompletions([]string{groupHostPair}, cobra.ShellCompDirectiveNoFileComp))
	return g
}
