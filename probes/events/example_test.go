package events_test

import (
	"fmt"

	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/probes/events"
	"github.com/migtrace/migtrace/probes/uprobe"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Records from a uprobe.Tracer are decoded and fed, in timestamp order, to
// a Builder, which hands back each migration as it ends.
func ExampleBuilder() {
	recs := []uprobe.Record{
		{Timestamp: 1, PID: 42, Cookie: uint64(probes.IDMigrationBegin), Args: [9]uint64{uint64(schema.RoleSource), 0x6f9c1d2e8a4b4c3d, 0x9e5f0a1b2c3d4e5f}},
		{Timestamp: 2, PID: 42, Cookie: uint64(probes.IDPhaseBegin), Args: [9]uint64{uint64(schema.RoleSource), uint64(schema.PhaseSync), 1_000}},
		{Timestamp: 3, PID: 42, Cookie: uint64(probes.IDPhaseEnd), Args: [9]uint64{uint64(schema.RoleSource), uint64(schema.PhaseSync), 122_000}},
		{Timestamp: 4, PID: 42, Cookie: uint64(probes.IDMigrationEnd), Args: [9]uint64{uint64(schema.RoleSource), 0x6f9c1d2e8a4b4c3d, 0x9e5f0a1b2c3d4e5f}},
	}
	b := events.NewBuilder()
	for _, r := range recs {
		e, err := events.Decode(r)
		if err != nil {
			fmt.Println(err)
			return
		}
		if m := b.Add(e); m != nil {
			fmt.Println(m.ID, m.Role, m.Phases[0].Phase, m.Phases[0].DurationNs(), "ns")
			fmt.Println(m.Traces(0).SpanCount(), "spans")
		}
	}
	// Output:
	// 6f9c1d2e-8a4b-4c3d-9e5f-0a1b2c3d4e5f source Sync 121000 ns
	// 2 spans
}
