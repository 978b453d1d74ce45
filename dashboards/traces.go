package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/table"

	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/schema"
)

// traceIDField is the display name the Jaeger datasource gives the trace
// id column of a search result.
const traceIDField = "Trace ID"

// tracesDashboard lists migrations from Jaeger and shows the one picked.
func tracesDashboard() *dashboard.DashboardBuilder {
	ids := new(panelIDs)
	jaeger := datasourceRef(jaegerType, varJaeger)
	emptyDefault := ""

	// Picking a row shows its trace below, keeping the search and range.
	showTrace := []dashboard.DynamicConfigValue{{
		Id: "links",
		Value: []map[string]any{{
			"title": "Show this migration's trace",
			"url": "/d/" + UIDTraces + "/?var-" + varTraceID + "=${__value.raw}&${" + varTags + ":queryparam}&${" +
				varJaeger + ":queryparam}&${__url_time_range}",
		}},
	}}

	d := dashboard.NewDashboardBuilder("migtrace — migration traces").
		Uid(UIDTraces).
		Description("Migrations as traces in Jaeger: one span per side and per phase, with the time-data stages as events.").
		Tags([]string{dashboardTag}).
		Editable().
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Link(dashboard.NewDashboardLinkBuilder("Migration metrics").
			Type(dashboard.DashboardLinkTypeLink).
			Url("/d/" + UIDMigrations + "/").
			Icon("dashboard").
			KeepTime(true)).
		WithVariable(datasourceVariable(varJaeger, "Jaeger", jaegerType)).
		WithVariable(dashboard.NewTextBoxVariableBuilder(varTags).
			Label("Span tags").
			Description("Jaeger tag filter in logfmt, e.g. " + schema.AttrResult + "=" + schema.ResultFailure).
			DefaultValue(dashboard.StringOrMap{String: &emptyDefault})).
		WithVariable(dashboard.NewTextBoxVariableBuilder(varTraceID).
			Label("Trace ID").
			DefaultValue(dashboard.StringOrMap{String: &emptyDefault}))

	d.WithPanel(table.NewPanelBuilder().Id(ids.next()).
		Title("Migrations (Jaeger search)").
		Description("The latest traces with a "+schema.SpanMigration+" span from service "+tracing.DefaultServiceName+". Click a trace id to show it below.").
		Datasource(jaeger).
		Span(24).Height(9).
		// Grafana rejects a footer whose reducer list is null.
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{})).
		OverrideByName(traceIDField, showTrace).
		Targets([]cog.Builder[variantsDataquery]{jaegerQuery{
			RefID:      "A",
			Datasource: &jaeger,
			QueryType:  jaegerQueryTypeSearch,
			Service:    tracing.DefaultServiceName,
			Operation:  schema.SpanMigration,
			Tags:       varRef(varTags),
			Limit:      20,
		}}))
	d.WithPanel(dashboard.NewPanelBuilder().Type("traces").Id(ids.next()).
		Title("Migration trace ${" + varTraceID + "}").
		Datasource(jaeger).
		Span(24).Height(16).
		Targets([]cog.Builder[variantsDataquery]{jaegerQuery{
			RefID:      "A",
			Datasource: &jaeger,
			Query:      varRef(varTraceID),
		}}))
	return d
}
