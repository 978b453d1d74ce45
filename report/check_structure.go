package report

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// The rules on the trace itself and on each side's phase structure.

// cutShort reports whether the side ended before its last phase: it
// failed, or an operator cancelled it.
func cutShort(m *model.Side) bool { return m.Failed() || m.Cancelled() }

// failedPhase is the phase a failed or cancelled side ended in: the phase
// span marked failed, else the one its root names; 0 when unknown or not
// cut short.
func failedPhase(m *model.Side) schema.Phase {
	if !cutShort(m) {
		return 0
	}
	for _, p := range m.Phases {
		if p.Failed {
			return p.Phase
		}
	}
	p, err := schema.ParsePhase(m.ErrorPhase)
	if err != nil {
		return 0
	}
	return p
}

// failedIn describes where m failed.
func failedIn(m *model.Side) string {
	if p := failedPhase(m); p != 0 {
		return "in " + p.String()
	}
	return "in an unrecorded phase"
}

// traceRules checks what the decoder found wrong with the side's spans.
func (c *checker) traceRules(m *model.Side) {
	side := m.Role
	if m.RootMissing {
		c.add(Finding{Rule: RuleRootSpan, Side: side, Severity: SeverityIncomplete,
			Message:  "the input holds spans of this side but not its root span: it was cut short, or the process died before exporting it",
			Expected: "a " + schema.SpanMigration + " span", Got: "none"})
	} else {
		c.ran(RuleRootSpan, side)
	}

	var ids []string
	for _, k := range m.Conflicts {
		if k.Kind == model.ConflictSpanID {
			ids = append(ids, fmt.Sprintf("%s (%s)", k.SpanID, k.Span))
		}
	}
	c.ran(RuleSpanConflict, side)
	if len(ids) > 0 {
		c.violation(RuleSpanConflict, side, "span ids carry two different spans; neither copy can be trusted over the other",
			"one span per span id", strings.Join(ids, ", "))
	}

	c.ran(RuleTraceID, side)
	if len(m.ForeignSpans) > 0 {
		var got []string
		for _, f := range m.ForeignSpans {
			got = append(got, fmt.Sprintf("%s %s in trace %s", f.Span, f.SpanID, f.TraceID))
		}
		c.violation(RuleTraceID, side, "spans labelled with this migration belong to another trace", "trace "+m.TraceID,
			strings.Join(got, ", "))
	}

	switch {
	case m.RootMissing:
		c.cannot(RuleResult, side, "no root span records the result")
	case !m.Recorded(model.RootAttr(schema.AttrResult)):
		c.need(RuleResult, side, m, model.RootAttr(schema.AttrResult))
	case m.Result == schema.ResultSuccess:
		c.ran(RuleResult, side)
	case m.Failed():
		c.ran(RuleResult, side)
		msg := fmt.Sprintf("the migration failed %s", failedIn(m))
		if m.Error != "" {
			msg += ": " + m.Error
		}
		if c.opts.AllowFailed {
			c.note(RuleResult, side, msg)
		} else {
			c.violation(RuleResult, side, msg, schema.ResultSuccess, schema.ResultFailure+" "+failedIn(m))
		}
	case m.Cancelled():
		// Not a failure, and not a success either: allowed as a failure is.
		c.ran(RuleResult, side)
		msg := fmt.Sprintf("the migration was cancelled %s by %s", failedIn(m), m.CancelledBy)
		if c.opts.AllowFailed {
			c.note(RuleResult, side, msg)
		} else {
			c.violation(RuleResult, side, msg, schema.ResultSuccess, schema.ResultCancelled+" "+failedIn(m))
		}
	default:
		c.ran(RuleResult, side)
		c.violation(RuleResult, side, "unknown result", schema.ResultSuccess+", "+schema.ResultFailure+" or "+schema.ResultCancelled, m.Result)
	}
}

// phaseRules checks the side's phase structure.
func (c *checker) phaseRules(m *model.Side) {
	side := m.Role
	present := make(map[schema.Phase]bool)
	var last schema.Phase
	for _, p := range m.Phases {
		present[p.Phase] = true
		last = max(last, p.Phase)
	}
	failedAt := failedPhase(m)
	// Phases after the last one recorded may simply not have run when the
	// outcome is unknown (no root, no result) or a failure's phase is.
	cut := schema.Phase(0)
	switch {
	case failedAt != 0:
		cut = failedAt
	case m.Result != schema.ResultSuccess:
		cut = last
	}
	var want, missing, extra, got []string
	pauseUnknown := false
	for _, p := range schema.Phases {
		if present[p] {
			got = append(got, p.String())
		}
		switch {
		case !p.Runs(side):
			if present[p] {
				extra = append(extra, fmt.Sprintf("%s (a %s has none)", p, side))
			}
		case cut != 0 && p > cut:
			if present[p] {
				extra = append(extra, fmt.Sprintf("%s (after the failure %s)", p, failedIn(m)))
			}
		case p == schema.PhasePause && !present[p] && m.ProtocolVersion == 0:
			// Every migtrace protocol version has a Pause phase, and a
			// migtrace side records its version; without one, the side's
			// phase list is not known to include it.
			pauseUnknown = true
		default:
			want = append(want, p.String())
			if !present[p] {
				missing = append(missing, p.String())
			}
		}
	}
	var twice []string
	for _, k := range m.Conflicts {
		if k.Kind == model.ConflictDuplicate {
			twice = append(twice, k.Span)
		}
	}
	c.ran(RulePhaseSet, side)
	if len(missing)+len(extra)+len(twice) > 0 {
		var parts []string
		if len(missing) > 0 {
			parts = append(parts, "missing "+strings.Join(missing, ", "))
		}
		if len(twice) > 0 {
			parts = append(parts, "recorded more than once: "+strings.Join(twice, ", "))
		}
		if len(extra) > 0 {
			parts = append(parts, "unexpected "+strings.Join(extra, ", "))
		}
		c.violation(RulePhaseSet, side, "phase spans: "+strings.Join(parts, "; "),
			strings.Join(want, ", "), strings.Join(got, ", "))
	} else if pauseUnknown {
		c.cannot(RulePhaseSet, side, "no Pause span, and no protocol version recorded to say this side's protocol has one (propolis's seed capture has none)")
	}

	// Begin and end on the host's monotonic clock.
	mono := true
	for _, p := range m.Phases {
		if !c.need(RulePhaseDuration, side, m, model.PhaseAttr(p.Phase, schema.AttrPhaseBeginNs), model.PhaseAttr(p.Phase, schema.AttrPhaseEndNs)) {
			mono = false
			continue
		}
		c.ran(RulePhaseDuration, side)
		if p.BeginNs > p.EndNs {
			c.violation(RulePhaseDuration, side, fmt.Sprintf("phase %s ends before it begins", p.Phase),
				"begin_ns <= end_ns", fmt.Sprintf("begin_ns %d, end_ns %d", p.BeginNs, p.EndNs))
		}
		if !p.Start.IsZero() && !p.End.IsZero() && p.End.Before(p.Start) {
			c.violation(RulePhaseDuration, side, fmt.Sprintf("phase %s's span ends before it starts", p.Phase),
				"start <= end", fmt.Sprintf("start %s, end %s", p.Start.Format(timeLayout), p.End.Format(timeLayout)))
		}
	}
	if !mono {
		c.cannot(RulePhaseOrder, side, "a phase's monotonic begin or end is not recorded")
	} else {
		for i := 1; i < len(m.Phases); i++ {
			prev, p := m.Phases[i-1], m.Phases[i]
			c.ran(RulePhaseOrder, side)
			if p.BeginNs < prev.EndNs {
				c.violation(RulePhaseOrder, side, fmt.Sprintf("phase %s begins before %s, which precedes it, ends", p.Phase, prev.Phase),
					fmt.Sprintf("%s begin_ns >= %d", p.Phase, prev.EndNs), strconv.FormatInt(p.BeginNs, 10))
			}
		}
	}

	switch {
	case m.RootMissing:
		c.cannot(RulePhaseInRoot, side, "no root span")
	case m.StartTime.IsZero() || m.EndTime.IsZero():
		c.cannot(RulePhaseInRoot, side, "the root span's times are not recorded")
	default:
		for _, p := range m.Phases {
			if p.Start.IsZero() || p.End.IsZero() {
				c.cannot(RulePhaseInRoot, side, fmt.Sprintf("phase %s's span times are not recorded", p.Phase))
				continue
			}
			c.ran(RulePhaseInRoot, side)
			if p.Start.Before(m.StartTime) || p.End.After(m.EndTime) {
				c.violation(RulePhaseInRoot, side, fmt.Sprintf("phase %s's span lies outside the side's root span", p.Phase),
					fmt.Sprintf("within %s .. %s", m.StartTime.Format(timeLayout), m.EndTime.Format(timeLayout)),
					fmt.Sprintf("%s .. %s", p.Start.Format(timeLayout), p.End.Format(timeLayout)))
			}
		}
	}
}

const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"
