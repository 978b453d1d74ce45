// Package tracing sets up migtrace's OpenTelemetry pipeline and defines how
// migration facts become spans, span events and metrics.
//
// [Setup] builds a [Telemetry] from a [Config]: a tracer provider that
// exports to an OTLP JSON Lines file ([NewFileExporter], the format of the
// OTel Collector's file exporter) and, when asked, to whatever the standard
// OTEL_* environment variables name; and a meter provider whose
// [Instruments] feed a Prometheus registry served by
// [Telemetry.MetricsHandler]. A nil *Telemetry and a nil *Instruments are
// valid and do nothing, so callers can run without telemetry.
//
// The attribute helpers ([StageEventAttributes], [Uint64], [Wallclock], ...)
// are the only place where migration values are encoded as attributes; the
// names come from package schema and are documented in docs/trace-schema.md.
//
// Errors: Setup returns errors that name the exporter or file that failed;
// Shutdown and ForceFlush join the errors of every exporter with
// errors.Join. Exporting after Shutdown fails with [ErrShutdown].
package tracing
