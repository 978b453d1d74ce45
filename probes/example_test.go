package probes_test

import (
	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/tracing/schema"
)

// The migration protocol brackets every phase with PhaseBegin and PhaseEnd,
// passing the host's monotonic clock; a tracer attached to the process
// reads the arguments, and without one the calls cost a few ns.
func ExamplePhaseBegin() {
	probes.PhaseBegin(schema.RoleSource, schema.PhaseSync, 17437355109672)
	probes.PhaseEnd(schema.RoleSource, schema.PhaseSync, 17437355230924, false)
}
