// Package report rebuilds what operators know from propolis's DTrace
// scripts — the live-migration-times.d phase table and the
// time-adjustments.d table — from the traces migtrace emits, and goes
// further: summaries over many migrations, a check of each migration
// from the evidence its trace holds, and a diagnosis of what dominated
// its time and its downtime (Diagnose, with the rules in CauseRules).
//
// The package works on model.Side (one side of one migration, as
// tracing/spancodec rebuilds it): the selection of migrations, Summarize
// (or SummarizeByHostPair), Check and Diagnose. Reading traces lives in report/otlpread, rendering in
// report/render, and report/reporttest builds traces in migtrace's schema
// for tests and benchmarks. It imports nothing of package migrate: Check
// re-implements every rule it verifies.
//
// Error contract: Select returns errors wrapping ErrNoMigrations,
// ErrMigrationNotFound or ErrNoPhases, RequirePhases ErrNoPhases or
// ErrPhaseReversed (match them with errors.Is). Check never fails; per
// migration it returns Findings (SeverityViolation: the trace contradicts
// a rule; SeverityIncomplete: part of a side is missing) and, for every
// rule on every side it applies to, whether it was verified or why not.
package report
