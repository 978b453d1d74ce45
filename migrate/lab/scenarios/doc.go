// Package scenarios runs migrations between lab hosts (package lab) under
// the conditions the TimeData phase and the migration protocol exist for:
// hosts whose hrtime differ by seconds, wall clocks that disagree by
// milliseconds, slow, distant and asymmetric links, a link cut during the
// RAM push and a partition across the handoff. Until these, every
// migration ran on loopback between processes that share one monotonic
// clock and one wall clock.
//
// Each scenario is a function that builds its hosts, runs their serves
// with --trace-file, migrates, stops the serves (so the traces are
// flushed) and returns a Run: the trace files and each migration's id
// and outcome. The package's tests assert on what `migtrace report`
// makes of those traces; other tests (a diagnosis of the same traces)
// can run a scenario the same way and read its Run. docs/scenarios.md
// shows each scenario's commands, tables and numbers.
package scenarios
