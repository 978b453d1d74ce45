package dashboards

import (
	"net/url"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/migtrace/migtrace/tracing/schema"
)

// Grafana unit ids used by the panels.
const (
	unitSeconds     = "s"
	unitBytes       = "bytes"
	unitBytesPerSec = "binBps"
	unitCount       = "short"
	unitPercent     = "percent"
)

// promQuery is one Prometheus target of a panel.
type promQuery struct {
	expr, legend string
	instant      bool // a single value for a stat panel
	heatmap      bool // buckets as a heatmap frame
}

func (q promQuery) builder(refID string) *prometheus.DataqueryBuilder {
	b := prometheus.NewDataqueryBuilder().
		RefId(refID).
		Datasource(datasourceRef(prometheusType, varDatasource)).
		Expr(q.expr).
		LegendFormat(q.legend)
	switch {
	case q.instant:
		b.Instant()
	case q.heatmap:
		b.Format(prometheus.PromQueryFormatHeatmap).Range()
	default:
		b.Range()
	}
	return b
}

// targets turns queries into builders with refIds A, B, C...
func targets(qs ...promQuery) []cog.Builder[variantsDataquery] {
	out := make([]cog.Builder[variantsDataquery], len(qs))
	for i, q := range qs {
		out[i] = q.builder(string(rune('A' + i)))
	}
	return out
}

// migrationsDashboard is the fleet view over the Prometheus metrics.
func migrationsDashboard(n promNames) *dashboard.DashboardBuilder {
	ids := new(panelIDs)
	roleSel := reMatch(n.role, varRef(varRole))
	phaseSel := []string{roleSel, reMatch(n.phase, varRef(varPhase))}
	roleOnly := []string{roleSel}
	ramPhases := strings.Join([]string{
		schema.PhaseRamPushPrePause.String(), schema.PhaseRamPushPostPause.String(), schema.PhaseRamPull.String(),
	}, "|")

	// Clicking a migrations count opens the trace search for migrations
	// with that result over the same time range.
	resultTag := url.QueryEscape(schema.AttrResult + "=")
	toTraces := dashboard.NewDashboardLinkBuilder("Traces of these migrations in Jaeger").
		Type(dashboard.DashboardLinkTypeLink).
		Url("/d/" + UIDTraces + "/?${__url_time_range}&var-" + varTags + "=" + resultTag +
			"${__field.labels." + n.result + "}")

	d := dashboard.NewDashboardBuilder("migtrace — migrations").
		Uid(UIDMigrations).
		Description("Live migrations seen by migtrace instance servers: results, phase timings, guest blackout, RAM transfer, pre-copy rounds and guest clock adjustments.").
		Tags([]string{dashboardTag}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Time("now-6h", "now").
		Refresh("30s").
		Timezone(common.TimeZoneBrowser).
		Link(dashboard.NewDashboardLinkBuilder("Migration traces (Jaeger)").
			Type(dashboard.DashboardLinkTypeLink).
			Url("/d/" + UIDTraces + "/").
			Icon("external link").
			KeepTime(true).
			Tooltip("Search migtrace's migration spans in Jaeger")).
		WithVariable(datasourceVariable(varDatasource, "Prometheus", prometheusType)).
		WithVariable(labelVariable(varRole, "Role", n.phaseDuration+suffixCount, n.role)).
		WithVariable(labelVariable(varPhase, "Phase", n.phaseDuration+suffixCount, n.phase))

	d.WithRow(dashboard.NewRowBuilder("Migrations").Id(ids.next()))
	d.WithPanel(newStat(ids).
		Title("Migrations in range, by role and result").
		Description("Finished migrations counted by each side, cancellations (an operator's cancel before the handoff) apart from failures; a migration appears once as source and once as destination. Click a value for its traces.").
		Span(6).Height(6).Unit(unitCount).Decimals(0).
		DataLinks([]cog.Builder[dashboard.DashboardLink]{toTraces}).
		Targets(targets(promQuery{
			expr:    sumBy(increase(selector(n.migrations, roleSel), macroRange), n.role, n.result),
			legend:  legend("", n.role, n.result),
			instant: true,
		})))
	d.WithPanel(timeseries.NewPanelBuilder().Id(ids.next()).
		Title("Migrations per minute, by result").
		Span(6).Height(6).Unit(unitCount).
		Targets(targets(promQuery{
			expr:   sumBy(rate(selector(n.migrations, roleSel), macroRateInterval), n.role, n.result) + " * 60",
			legend: legend("", n.role, n.result),
		})))
	d.WithPanel(newStat(ids).
		Title("Failed phases in range").
		Description("Phases that ended a migration with an error, by role and phase; cancelled ones are counted apart.").
		Span(6).Height(6).Unit(unitCount).Decimals(0).
		Targets(targets(promQuery{
			expr: sumBy(increase(selector(n.phaseDuration+suffixCount,
				append([]string{eqMatch(n.result, schema.ResultFailure)}, phaseSel...)...), macroRange), n.role, n.phase),
			legend:  legend("", n.role, n.phase),
			instant: true,
		})))
	d.WithPanel(newStat(ids).
		Title("Cancelled migrations in range, by phase").
		Description("Migrations an operator cancelled before the handoff (migtrace cancel, Ctrl-C on migrate, the API), by role and the phase each side was cancelled in. The guest ran on at the source.").
		Span(6).Height(6).Unit(unitCount).Decimals(0).
		Targets(targets(promQuery{
			expr: sumBy(increase(selector(n.phaseDuration+suffixCount,
				append([]string{eqMatch(n.result, schema.ResultCancelled)}, phaseSel...)...), macroRange), n.role, n.phase),
			legend:  legend("", n.role, n.phase),
			instant: true,
		})))

	d.WithRow(dashboard.NewRowBuilder("Phase durations").Id(ids.next()))
	for _, q := range []struct {
		title string
		q     float64
	}{{"Phase duration p50", 0.5}, {"Phase duration p95", 0.95}, {"Phase duration p99", 0.99}} {
		d.WithPanel(timeseries.NewPanelBuilder().Id(ids.next()).
			Title(q.title + " by phase and role").
			Span(8).Height(8).Unit(unitSeconds).
			Targets(targets(promQuery{
				expr:   quantile(q.q, n.phaseDuration, phaseSel, n.phase, n.role),
				legend: legend("", n.role, n.phase),
			})))
	}
	d.WithPanel(timeseries.NewPanelBuilder().Id(ids.next()).
		Title("Mean phase duration by phase and role").
		Span(12).Height(8).Unit(unitSeconds).
		Targets(targets(promQuery{
			expr:   mean(n.phaseDuration, phaseSel, macroRateInterval, n.phase, n.role),
			legend: legend("", n.role, n.phase),
		})))
	d.WithPanel(heatmap.NewPanelBuilder().Id(ids.next()).
		Title("Phase duration heatmap").
		Description("How many phases (of the selected roles and phases) fell in each duration bucket.").
		Span(12).Height(8).
		Calculate(false).
		YAxis(heatmap.NewYAxisConfigBuilder().Unit(unitSeconds)).
		Tooltip(heatmap.NewHeatmapTooltipBuilder().Mode(common.TooltipDisplayModeSingle).YHistogram(true)).
		Targets(targets(promQuery{
			expr:    sumBy(increase(selector(n.phaseDuration+suffixBucket, phaseSel...), macroRateInterval), labelLe),
			legend:  legend("", labelLe),
			heatmap: true,
		})))

	d.WithRow(dashboard.NewRowBuilder("Guest blackout and downtime").Id(ids.next()))
	d.WithPanel(timeseries.NewPanelBuilder().Id(ids.next()).
		Title("Blackout and downtime p95").
		Description("Blackout: guest paused on the source until resumed on the destination. Downtime: source pause to handoff.").
		Span(12).Height(8).Unit(unitSeconds).
		Targets(targets(
			promQuery{expr: quantile(0.95, n.blackout, nil), legend: "blackout p95"},
			promQuery{expr: quantile(0.95, n.downtime, nil), legend: "downtime p95"},
		)))
	d.WithPanel(newStat(ids).
		Title("Mean blackout and downtime in range").
		Span(12).Height(8).Unit(unitSeconds).
		Targets(targets(
			promQuery{expr: mean(n.blackout, nil, macroRange), legend: "blackout", instant: true},
			promQuery{expr: mean(n.downtime, nil, macroRange), legend: "downtime", instant: true},
		)))

	d.WithRow(dashboard.NewRowBuilder("Guest memory verified after the handoff").Id(ids.next()))
	d.WithPanel(newStat(ids).
		Title("Memory compared after the handoff, in range, by result").
		Description("Destinations that compared all guest memory with the source's frozen copy after the handoff (--verify-memory sampled or after). Any mismatch is a guest running on memory that differs from its source's: find it with migtrace report check.").
		Span(24).Height(6).Unit(unitCount).Decimals(0).
		Targets(targets(promQuery{
			expr:    sumBy(increase(n.memoryLate, macroRange), n.memoryLateResult),
			legend:  legend("", n.memoryLateResult),
			instant: true,
		})))

	d.WithRow(dashboard.NewRowBuilder("RAM transfer").Id(ids.next()))
	d.WithPanel(newStat(ids).
		Title("Guest RAM moved in range").
		Description("Page payload bytes, split by whether the VM was paused while they moved.").
		Span(8).Height(8).Unit(unitBytes).
		Targets(targets(promQuery{
			expr:    sumBy(increase(selector(n.ramTransferred, roleOnly...), macroRange), n.role, n.ramPaused),
			legend:  legend("", n.role) + " paused=" + legend("", n.ramPaused),
			instant: true,
		})))
	d.WithPanel(timeseries.NewPanelBuilder().Id(ids.next()).
		Title("RAM throughput while transferring").
		Description("Bytes moved divided by the time spent in the RAM phases: the link speed a migration achieved.").
		Span(8).Height(8).Unit(unitBytesPerSec).
		Targets(targets(promQuery{
			expr: sumBy(rate(selector(n.ramTransferred, roleOnly...), macroRateInterval), n.role) + " / " +
				sumBy(rate(selector(n.phaseDuration+suffixSum, roleSel, reMatch(n.phase, ramPhases)), macroRateInterval), n.role),
			legend: legend("", n.role),
		})))
	d.WithPanel(timeseries.NewPanelBuilder().Id(ids.next()).
		Title("RAM bytes per second (wall clock)").
		Span(8).Height(8).Unit(unitBytesPerSec).
		Targets(targets(promQuery{
			expr:   sumBy(rate(selector(n.ramTransferred, roleOnly...), macroRateInterval), n.role, n.ramPaused),
			legend: legend("", n.role) + " paused=" + legend("", n.ramPaused),
		})))

	d.WithRow(dashboard.NewRowBuilder("Pre-copy and guest clocks").Id(ids.next()))
	d.WithPanel(timeseries.NewPanelBuilder().Id(ids.next()).
		Title("Pre-copy rounds per migration").
		Span(8).Height(8).Unit(unitCount).
		Targets(targets(
			promQuery{expr: mean(n.precopyRounds, roleOnly, macroRateInterval, n.role), legend: legend("mean", n.role)},
			promQuery{expr: quantile(0.95, n.precopyRounds, roleOnly, n.role), legend: legend("p95", n.role)},
		)))
	d.WithPanel(timeseries.NewPanelBuilder().Id(ids.next()).
		Title("Guest TSC adjustment by time-data stage").
		Description("Guest TSC ticks each stage added on the destination. The mean is exact; p95 is bounded by decade-wide buckets.").
		Span(8).Height(8).Unit(unitCount).
		ScaleDistribution(common.NewScaleDistributionConfigBuilder().Type(common.ScaleDistributionLog).Log(10)).
		Targets(targets(
			promQuery{expr: mean(n.tscAdjustment, nil, macroRateInterval, n.stage), legend: legend("mean", n.stage)},
			promQuery{expr: quantile(0.95, n.tscAdjustment, nil, n.stage), legend: legend("p95", n.stage)},
		)))
	d.WithPanel(timeseries.NewPanelBuilder().Id(ids.next()).
		Title("Clock offset estimate with its error bound").
		Description("The destination's last estimate of its wall clock minus the source's, and the band it is known to within (half the best round trip).").
		Span(8).Height(8).Unit(unitSeconds).
		Targets(targets(
			promQuery{expr: n.clockOffset, legend: legend("offset", labelInstance)},
			promQuery{expr: n.clockOffset + " + " + n.clockOffsetError, legend: legend("upper bound", labelInstance)},
			promQuery{expr: n.clockOffset + " - " + n.clockOffsetError, legend: legend("lower bound", labelInstance)},
		)))
	d.WithPanel(timeseries.NewPanelBuilder().Id(ids.next()).
		Title("Auto-converge throttle").
		Description("Share of time auto-converge makes a migrating guest's vCPUs sleep, on its source: it steps up while pre-copy rounds do not shrink the dirty set, and drops to 0 at the pause.").
		Span(8).Height(8).Unit(unitPercent).
		Targets(targets(promQuery{
			expr: selector(n.throttle, roleOnly...), legend: legend("", labelInstance),
		})))
	return d
}

// newStat is a stat panel showing each series' last value, the one an
// instant query returns.
func newStat(ids *panelIDs) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Id(ids.next()).
		GraphMode(common.BigValueGraphModeNone).
		Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
}
