// Package dashboards generates migtrace's Grafana dashboards and the
// provisioning files that point Grafana at Prometheus and Jaeger.
//
// The dashboards are written in Go with the Grafana foundation SDK and
// committed as JSON (migtrace-*.json) next to provisioning/. Metric and
// label names come from package tracing, never spelled here, so the
// queries follow the schema. `make generate` rewrites the files through
// the go:generate line in dashboards.go; the package's tests fail when the
// committed files differ from Generate's output, and evaluate every
// Prometheus expression against a real Prometheus scraping real
// migrations.
//
// Errors: Generate reports names tracing cannot translate and builder
// failures, wrapped with the dashboard they concern. PrometheusQueries
// wraps JSON decoding errors and ErrNoExpr, matched with errors.Is.
package dashboards
