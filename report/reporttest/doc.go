// Package reporttest builds traces in migtrace's schema from
// model.Side values, for tests and benchmarks of the readers and
// renderers, and holds the seed's worked example (propolis PR #359) as
// such values.
//
// The traces it writes are what the migration protocol emits: per side a
// root span named schema.SpanMigration and a child span per phase, with
// the time-data, clock-offset, pre-copy, blackout and continuity events.
// Reading them back with report/otlpread gives the same Migration values.
package reporttest
