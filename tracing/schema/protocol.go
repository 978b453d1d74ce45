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
)
