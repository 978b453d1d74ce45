// Package schema is the single source of truth for the names migtrace
// publishes: the migration phases and time-data stages, and every span,
// span event, attribute and metric name.
//
// migrate, probes, tracing, report and dashboards import these constants;
// nothing else spells a name out. docs/trace-schema.md documents each one.
//
// The package is a leaf: it imports only the standard library, so every
// other package can depend on it without cycles.
package schema
