package report

import (
	"fmt"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// memoryLate reports the destination's comparison of all guest memory
// made after the handoff (verification sampled or after). The guest
// already ran on the destination, so a mismatch was not prevented: the
// check can only make it loud.
func (c *checker) memoryLate(m *model.Side) {
	const d = schema.RoleDestination
	k, late := m.Continuity, m.MemoryLate
	if late == nil {
		// The rule applies only where a comparison was due: with another
		// verification, or one not recorded, there is nothing to check.
		if k == nil || (k.MemoryVerify != schema.MemoryVerifySampled && k.MemoryVerify != schema.MemoryVerifyAfter) {
			return
		}
		switch {
		case m.RootMissing:
			c.cannot(RuleMemoryLate, d, "the destination's migration span, which carries the verdict, is not in the input")
		case m.Failed():
			c.cannot(RuleMemoryLate, d, fmt.Sprintf("the migration failed %s, before the comparison after the handoff", failedIn(m)))
		default:
			// The destination ends its migration span only after the
			// verdict, so a span without one hides it.
			c.violation(RuleMemoryLate, d, fmt.Sprintf("memory verification %s is due after the handoff, but the destination's migration span records no verdict", k.MemoryVerify),
				schema.MemoryLateMatch, "no verdict")
		}
		return
	}
	c.ran(RuleMemoryLate, d)
	switch late.Result {
	case schema.MemoryLateMatch:
	case schema.MemoryLateMismatch:
		c.violation(RuleMemoryLate, d, "guest memory differed from the source's at pause, found after the handoff: the guest ran on the destination with memory its source never had",
			schema.MemoryLateMatch, schema.MemoryLateMismatch)
	case schema.MemoryLateUnavailable:
		c.violation(RuleMemoryLate, d, "the comparison of guest memory due after the handoff was never made: "+late.Error,
			schema.MemoryLateMatch, schema.MemoryLateUnavailable)
	default:
		c.violation(RuleMemoryLate, d, fmt.Sprintf("unknown verdict %q of the comparison after the handoff", late.Result),
			schema.MemoryLateMatch, late.Result)
	}
}
