// Package report rebuilds what operators know from propolis's DTrace
// scripts — the live-migration-times.d phase table and the
// time-adjustments.d table — from the traces migtrace emits, and goes
// further: summaries over many migrations and a check of the clock
// adjustment arithmetic.
//
// The package holds the model (Migration: one side of one migration, with
// its phase timings, time-data stages, clock offset, blackout and guest
// continuity), the selection of migrations, Summarize and Check. Reading
// traces lives in report/otlpread, rendering in report/render, and
// report/reporttest builds traces in migtrace's schema for tests and
// benchmarks.
//
// Error contract: Select returns errors wrapping ErrNoMigrations,
// ErrMigrationNotFound or ErrNoPhases (match them with errors.Is).
// Check never fails; it returns Findings, and a Finding of SeverityViolation
// means the trace shows an adjustment or continuity result that does not
// hold.
package report
