// Package otlpread reads migtrace's traces back into model.Side
// values: OTLP JSON Lines files (one TracesData / ExportTraceServiceRequest
// object per line, as migtrace's --trace-file and the OpenTelemetry
// Collector's file exporter write them) and Jaeger's /api/v3/traces API:
// one trace by id (ReadJaeger) or every trace of a service in a time
// window (SearchJaeger), for fleets.
//
// The input is streamed: each line is decoded, its migtrace spans are
// folded into the per-migration model, and the line is dropped, so memory
// grows with the number of migrations, not with the number of spans.
// Spans that are not migtrace's are skipped.
//
// Error contract: malformed input yields a *LineError naming the input and
// line (match with errors.As); it wraps ErrNotJSON, ErrNotTraces or
// ErrLineTooLong, or a bad-attribute error. Jaeger failures wrap
// ErrTraceNotFound (a search: ErrNoTracesFound) or ErrJaegerUnreachable. Migrations fails with
// report.ErrNoMigrations when no migtrace span was read. Nothing panics on
// bad input: the reader is fuzzed.
package otlpread
