// Package events turns raw uprobe records from migtrace's probe points into
// typed events, assembles them into migrations (one per process and role,
// from MigrationBegin to MigrationEnd), and converts a finished migration
// into OpenTelemetry trace data shaped like the spans migrate itself emits
// (tracing/schema), so that report reads either the same way.
//
// The package does no I/O and touches no kernel: it works on any OS, on
// records from a live tracer or from a test.
//
// Errors: Decode returns a *DecodeError (wrapping ErrBadRecord) for a
// record with an unknown probe ID or an out-of-range role, phase or stage.
// The Builder never fails; events it cannot place (a phase end with no
// migration open, as when the tracer attached mid-migration) are counted in
// Builder.Dropped.
package events
