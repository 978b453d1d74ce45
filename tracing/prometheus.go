package tracing

import (
	"fmt"

	"github.com/prometheus/otlptranslator"

	"github.com/migtrace/migtrace/tracing/schema"
)

// promStrategy is how OTel names become Prometheus names: escape to
// underscores and add unit and _total suffixes, which is what Prometheus
// 2.x servers without UTF-8 names need. Setup passes the same strategy to
// the exporter, so PrometheusName and /metrics cannot disagree.
var promStrategy = otlptranslator.UnderscoreEscapingWithSuffixes

// Prometheus metric family names of migtrace's metrics, as served on
// /metrics. Histograms expose <name>_bucket, <name>_sum and <name>_count.
var (
	PromPhaseDuration    = mustPrometheusName(schema.MetricPhaseDuration)
	PromRAMTransferred   = mustPrometheusName(schema.MetricRAMTransferred)
	PromMigrations       = mustPrometheusName(schema.MetricMigrations)
	PromDowntime         = mustPrometheusName(schema.MetricDowntime)
	PromBlackout         = mustPrometheusName(schema.MetricBlackout)
	PromPrecopyRounds    = mustPrometheusName(schema.MetricPrecopyRounds)
	PromTSCAdjustment    = mustPrometheusName(schema.MetricTSCAdjustment)
	PromClockOffset      = mustPrometheusName(schema.MetricClockOffset)
	PromClockOffsetError = mustPrometheusName(schema.MetricClockOffsetError)
	PromThrottle         = mustPrometheusName(schema.MetricThrottle)
	PromMemoryLate       = mustPrometheusName(schema.MetricMemoryLate)
)

// PrometheusName returns the Prometheus family name for a metric info,
// e.g. migration_phase_duration_seconds for schema.MetricPhaseDuration.
func (m MetricInfo) PrometheusName() (string, error) {
	namer := otlptranslator.NewMetricNamer("", promStrategy)
	var typ otlptranslator.MetricType = otlptranslator.MetricTypeGauge
	switch m.Kind {
	case KindHistogram:
		typ = otlptranslator.MetricTypeHistogram
	case KindCounter:
		typ = otlptranslator.MetricTypeMonotonicCounter
	}
	name, err := namer.Build(otlptranslator.Metric{Name: m.Name, Unit: m.Unit, Type: typ})
	if err != nil {
		return "", fmt.Errorf("prometheus name of %s: %w", m.Name, err)
	}
	return name, nil
}

// PrometheusName returns the Prometheus family name of the migtrace metric
// called otelName (a schema.Metric* constant), or an error for a name
// migtrace does not publish.
func PrometheusName(otelName string) (string, error) {
	for _, m := range metricInfos {
		if m.Name == otelName {
			return m.PrometheusName()
		}
	}
	return "", fmt.Errorf("prometheus name of %q: not a migtrace metric", otelName)
}

// PrometheusLabel returns the label name the exporter gives attribute key
// (e.g. migration_role for schema.AttrRole).
func PrometheusLabel(key string) (string, error) {
	namer := otlptranslator.LabelNamer{UTF8Allowed: !promStrategy.ShouldEscape()}
	label, err := namer.Build(key)
	if err != nil {
		return "", fmt.Errorf("prometheus label of %q: %w", key, err)
	}
	return label, nil
}

// mustPrometheusName backs the Prom* variables; the table is static, so a
// failure is a programming error caught by the first test run.
func mustPrometheusName(otelName string) string {
	name, err := PrometheusName(otelName)
	if err != nil {
		panic(err)
	}
	return name
}
