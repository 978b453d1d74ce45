package schema

// Names the destination uses to record the source's own view of the
// migration, carried in the Finish message, so that a destination-only
// trace still holds both hosts' phase timings.
const (
	// EventSourcePhase: one per phase the source ran, on the destination's
	// Finish span, with AttrPhase, AttrPhaseBeginNs, AttrPhaseEndNs (the
	// source's monotonic clock), AttrRAMBytes and AttrRAMPages.
	EventSourcePhase = "migration.source.phase"
	// AttrSourceDowntimeNs: on the destination's root span, the source's
	// pause-to-handoff time as the source measured it.
	AttrSourceDowntimeNs = "migration.source.downtime_ns"
	// AttrHandoffState: on each side's root span, its last handoff state
	// (docs/protocol.md §9).
	AttrHandoffState = "migration.handoff.state"
	// AttrHandoffSettledBy: on a root span, "peer" or "operator" when the
	// side learnt the handoff's outcome other than from the stream.
	AttrHandoffSettledBy = "migration.handoff.settled_by"
)
