package dashboards

import (
	"fmt"
	"strings"
)

// Grafana macros and variable references the queries use. Grafana
// replaces them before a query reaches Prometheus.
const (
	macroRateInterval = "$__rate_interval"
	macroRange        = "$__range"
)

// selector renders `name{l1=~"v1",...}` with matchers in the order given;
// an empty value list renders the bare name.
func selector(name string, matchers ...string) string {
	if len(matchers) == 0 {
		return name
	}
	return name + "{" + strings.Join(matchers, ",") + "}"
}

// reMatch matches label against a regular expression, such as a
// multi-value dashboard variable (Grafana joins the values as a|b).
func reMatch(label, re string) string { return fmt.Sprintf("%s=~%q", label, re) }

// eqMatch matches label against a literal value.
func eqMatch(label, value string) string { return fmt.Sprintf("%s=%q", label, value) }

// varRef is how a query refers to dashboard variable name.
func varRef(name string) string { return "$" + name }

func by(labels ...string) string { return "by (" + strings.Join(labels, ", ") + ")" }

// sumBy wraps inner in `sum by (labels) (inner)`, or `sum (inner)` with no labels.
func sumBy(inner string, labels ...string) string {
	if len(labels) == 0 {
		return "sum (" + inner + ")"
	}
	return "sum " + by(labels...) + " (" + inner + ")"
}

func rate(series, window string) string     { return "rate(" + series + "[" + window + "])" }
func increase(series, window string) string { return "increase(" + series + "[" + window + "])" }

// quantile is histogram_quantile over the _bucket series of histogram
// family, summed by le and labels.
func quantile(q float64, family string, matchers []string, labels ...string) string {
	buckets := selector(family+suffixBucket, matchers...)
	return fmt.Sprintf("histogram_quantile(%g, %s)", q,
		sumBy(rate(buckets, macroRateInterval), append([]string{labelLe}, labels...)...))
}

// mean is the histogram's average observation over window: the increase
// of _sum divided by the increase of _count, summed by labels.
func mean(family string, matchers []string, window string, labels ...string) string {
	agg := increase
	if window == macroRateInterval {
		agg = rate
	}
	return sumBy(agg(selector(family+suffixSum, matchers...), window), labels...) + " / " +
		sumBy(agg(selector(family+suffixCount, matchers...), window), labels...)
}

// legend renders a Grafana legend template from label names.
func legend(prefix string, labels ...string) string {
	parts := make([]string, 0, len(labels)+1)
	if prefix != "" {
		parts = append(parts, prefix)
	}
	for _, l := range labels {
		parts = append(parts, "{{"+l+"}}")
	}
	return strings.Join(parts, " ")
}
