// Package tracing sets up migtrace's OpenTelemetry pipeline: exporters,
// metrics and trace-context propagation.
//
// [Setup] builds a [Telemetry] from a [Config]: a tracer provider that
// exports to an OTLP JSON Lines file ([NewFileExporter], the format of the
// OTel Collector's file exporter) and, when asked, to whatever the standard
// OTEL_* environment variables name; and a meter provider whose
// [Instruments] feed a Prometheus registry served by
// [Telemetry.MetricsHandler]. A nil *Telemetry and a nil *Instruments are
// valid and do nothing, so callers can run without telemetry.
//
// What a migration records lives elsewhere, each in one place: the names
// of spans, events, attributes and metrics in tracing/schema (documented in
// docs/trace-schema.md), the record of one side of a migration in
// tracing/model, and the only code that turns that record into span
// attributes and back in tracing/spancodec.
//
// Errors: Setup returns errors that name the exporter or file that failed;
// Shutdown and ForceFlush join the errors of every exporter with
// errors.Join. Exporting after Shutdown fails with [ErrShutdown].
package tracing
