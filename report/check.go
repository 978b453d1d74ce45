package report

import (
	"math/bits"
	"strconv"
	"strings"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Rules Check applies; a Finding names one.
const (
	// The trace itself, each side.
	RuleRootSpan     = "root-span"     // the side's root span is in the input
	RuleSpanConflict = "span-conflict" // no span id carries two different spans
	RuleTraceID      = "trace-id"      // every span carries its root span's trace id
	RuleResult       = "result"        // the side succeeded (unless failures are allowed)

	// Phase structure, each side.
	RulePhaseSet      = "phase-set"      // each of its phases exactly once
	RulePhaseDuration = "phase-duration" // no phase ends before it begins
	RulePhaseOrder    = "phase-order"    // phases in protocol order, not overlapping
	RulePhaseInRoot   = "phase-in-root"  // phase spans inside the root span

	// Time data, the destination.
	RuleTimeData       = "time-data"          // all three stages recorded
	RuleUptime         = "guest-uptime"       // uptime = source hrtime − source boot_hrtime
	RuleMigrationDelta = "migration-delta"    // delta and clamp = the recorded wall clocks' difference
	RuleMigrationRow   = "migration-duration" // Migration row duration = migrate delta
	RuleTSCDelta       = "tsc-delta"          // userspace TSC delta = ⌊Δ·f/1e9⌋
	RuleBootHrtime     = "boot-hrtime"        // userspace boot_hrtime = dst hrtime − uptime − Δ
	RuleRowTSC         = "row-tsc"            // each row's TSC = previous + its adjustment (mod 2^64)
	RuleRowBootHrtime  = "row-boot-hrtime"    // each row's boot_hrtime = previous + its adjustment
	RuleKernelBoot     = "kernel-boot-hrtime" // kernel boot_hrtime = userspace's
	RuleKernelTSC      = "kernel-tsc"         // kernel TSC correction = ⌊latency·f/1e9⌋
	RuleGuestFreq      = "guest-freq"         // the frequency never changes
	RuleNegativeDelta  = "negative-delta"     // the wall-clock delta was not clamped at 0
	RuleClockOffset    = "clock-offset"       // |offset| within its error bound

	// Both sides.
	RuleSourceTimeData = "source-time-data" // the source's read = the destination's Migration row

	// The destination's check of the guest at handoff.
	RuleTSCMonotonic     = "tsc-monotonic"      // the guest TSC never went backwards
	RuleMemoryChecksum   = "memory-checksum"    // guest memory arrived intact
	RuleDeviceState      = "device-state"       // device state matches
	RuleTSCOffsetIgnored = "tsc-offset-ignored" // note: the VMM did not apply the TSC offset

	// The destination's comparison of guest memory after the handoff.
	RuleMemoryLate = "memory-after-handoff" // all memory matched, compared after the handoff
)

// Rule describes one rule, for help text and documentation.
type Rule struct {
	Name string
	// Of is whose evidence the rule reads: "each side", "destination" or
	// "both sides".
	Of string
	// Holds says what is true when the rule passes.
	Holds string
}

// Rules lists every rule in the order Check applies them.
var Rules = []Rule{
	{RuleRootSpan, "each side", "the side's root span is in the input; without it the input is incomplete (cut short, or the process died)"},
	{RuleSpanConflict, "each side", "no span id was seen with two different contents"},
	{RuleTraceID, "each side", "every span of the side carries its root span's trace id"},
	{RuleResult, "each side", "the side succeeded; a failure names its phase (a note with --allow-failed)"},
	{RulePhaseSet, "each side", "each phase its role runs (up to a failed one) exactly once; what is missing, doubled or out of place is named"},
	{RulePhaseDuration, "each side", "no phase ends before it begins"},
	{RulePhaseOrder, "each side", "phases run in protocol order without overlapping (host monotonic clock)"},
	{RulePhaseInRoot, "each side", "every phase span lies inside the side's root span (wall clock)"},
	{RuleTimeData, "destination", "the Migration, userspace and kernel stages are all recorded"},
	{RuleUptime, "destination", "uptime = source hrtime - source boot_hrtime"},
	{RuleMigrationDelta, "destination", "the delta and its clamped flag = destination wall clock - source wall clock (less the measured offset when skew correction was applied), clamped at 0"},
	{RuleMigrationRow, "destination", "the Migration row's duration = the migration delta"},
	{RuleTSCDelta, "destination", "the userspace TSC adjustment = floor(delta_ns x freq / 1e9)"},
	{RuleBootHrtime, "destination", "the new boot_hrtime = destination hrtime - uptime - delta"},
	{RuleRowTSC, "destination", "each row's guest TSC = the previous row's + its adjustment (mod 2^64)"},
	{RuleRowBootHrtime, "destination", "each row's boot_hrtime = the previous row's + its adjustment"},
	{RuleKernelBoot, "destination", "the kernel keeps the userspace boot_hrtime"},
	{RuleKernelTSC, "destination", "the kernel's TSC correction = floor(VMM latency x freq / 1e9), the latency = kernel hrtime - userspace hrtime"},
	{RuleGuestFreq, "destination", "the guest frequency never changes"},
	{RuleNegativeDelta, "destination", "the destination's wall clock was not behind the source's (no delta clamped to 0)"},
	{RuleClockOffset, "destination", "the hosts' wall clocks agree within the offset estimate's error bound (a note when skew correction applied it)"},
	{RuleSourceTimeData, "both sides", "the time data the source read = the destination's Migration row"},
	{RuleTSCMonotonic, "destination", "the guest's own TSC ring never went backwards"},
	{RuleMemoryChecksum, "destination", "guest memory matches the source's checksum at pause"},
	{RuleDeviceState, "destination", "the imported device state matches the source's"},
	{RuleTSCOffsetIgnored, "destination", "a note only: the VMM did not honour the TSC offset, so continuity reflects the host TSC"},
	{RuleMemoryLate, "destination", "with memory verification sampled or after, all guest memory matched the source's frozen copy when compared after the handoff; a mismatch, or a comparison never made, fails the check"},
}

// Severity says whether a Finding fails the check.
type Severity int

const (
	// SeverityNote is information that does not fail the check.
	SeverityNote Severity = iota
	// SeverityViolation fails the check: the evidence contradicts a rule.
	SeverityViolation
	// SeverityIncomplete fails the check: the input lacks what a complete
	// trace has, so it cannot be taken as verified.
	SeverityIncomplete
)

func (s Severity) String() string {
	switch s {
	case SeverityViolation:
		return "violation"
	case SeverityIncomplete:
		return "incomplete"
	}
	return "note"
}

// MarshalText encodes the severity as its name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one rule's verdict on a migration. Side is the side whose
// evidence it is about, 0 for a rule over both.
type Finding struct {
	Rule     string      `json:"rule"`
	Side     schema.Role `json:"side,omitempty"`
	Severity Severity    `json:"severity"`
	Message  string      `json:"message"`
	Expected string      `json:"expected,omitempty"`
	Got      string      `json:"got,omitempty"`
}

// RuleRef names a rule as applied to one side (0: to both).
type RuleRef struct {
	Rule string      `json:"rule"`
	Side schema.Role `json:"side,omitempty"`
}

// Unverified is a rule that could not be checked, and why.
type Unverified struct {
	Rule   string      `json:"rule"`
	Side   schema.Role `json:"side,omitempty"`
	Reason string      `json:"reason"`
}

// CheckResult is Check's verdict on one migration, from every side of it
// the input holds. Each rule, per side it applies to, is in exactly one
// of Findings (as a violation), Verified or NotVerified.
type CheckResult struct {
	MigrationID string `json:"migration_id"`
	// Sides are the sides whose own spans were in the input.
	Sides       []schema.Role     `json:"sides"`
	Findings    []Finding         `json:"findings"`
	Verified    []RuleRef         `json:"verified"`
	NotVerified []Unverified      `json:"not_verified"`
	Continuity  *model.Continuity `json:"continuity,omitempty"`
	// Checked counts the comparisons made.
	Checked int `json:"checks_made"`
}

// OK reports whether no finding fails the check.
func (r CheckResult) OK() bool { return len(r.Problems()) == 0 }

// Verdict is "OK", "FAIL" (a violation) or "INCOMPLETE" (the input lacks
// part of the migration, and nothing contradicts a rule).
func (r CheckResult) Verdict() string {
	v := "OK"
	for _, f := range r.Findings {
		switch f.Severity {
		case SeverityViolation:
			return "FAIL"
		case SeverityIncomplete:
			v = "INCOMPLETE"
		}
	}
	return v
}

// Violations returns the findings that contradict a rule.
func (r CheckResult) Violations() []Finding { return r.withSeverity(SeverityViolation) }

// Problems returns the findings that fail the check: violations and
// incompleteness.
func (r CheckResult) Problems() []Finding {
	return r.withSeverity(SeverityViolation, SeverityIncomplete)
}

// Notes returns the findings that do not fail the check.
func (r CheckResult) Notes() []Finding { return r.withSeverity(SeverityNote) }

func (r CheckResult) withSeverity(sev ...Severity) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		for _, s := range sev {
			if f.Severity == s {
				out = append(out, f)
			}
		}
	}
	return out
}

// TSCTicks returns ⌊ns × freqHz / 1e9⌋ in 128-bit arithmetic, and false
// when the result does not fit 64 bits.
func TSCTicks(ns uint64, freqHz uint64) (uint64, bool) {
	hi, lo := bits.Mul64(ns, freqHz)
	if hi >= 1e9 {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, 1e9)
	return q, true
}

// Options change what Check accepts.
type Options struct {
	// AllowFailed turns a failed migration from a violation into a note;
	// the rules its failure left without evidence are not verified.
	AllowFailed bool
}

// Check checks every migration in ms, each from all of its sides present,
// in the order the migrations first appear.
func Check(ms []model.Side, opts Options) []CheckResult {
	groups := ByMigration(ms)
	out := make([]CheckResult, len(groups))
	for i, sides := range groups {
		out[i] = CheckMigration(sides, opts)
	}
	return out
}

// CheckMigration checks one migration from the sides of it the input
// holds. It recomputes every derived value from the recorded inputs; it
// does not call the code that made the adjustment. A source rebuilt from
// its destination's report (ReportedByPeer) is not evidence of its own:
// the rules on the source are then not verified.
func CheckMigration(sides []model.Side, opts Options) CheckResult {
	c := newChecker(opts)
	var src, dst *model.Side
	absent := map[schema.Role]string{
		schema.RoleSource:      "the source's own spans are not in the input",
		schema.RoleDestination: "the destination's spans are not in the input",
	}
	for i := range sides {
		m := &sides[i]
		c.res.MigrationID = m.ID
		switch {
		case m.ReportedByPeer:
			absent[schema.RoleSource] += " (its phases are known only from the destination's report)"
		case m.Role == schema.RoleSource && src == nil:
			src = m
		case m.Role == schema.RoleDestination && dst == nil:
			dst = m
		}
	}
	for _, s := range []struct {
		role schema.Role
		m    *model.Side
	}{{schema.RoleSource, src}, {schema.RoleDestination, dst}} {
		if s.m == nil {
			for _, r := range Rules {
				if r.Name == RuleTSCOffsetIgnored {
					continue // a note, never verified
				}
				if r.Of == "each side" || (r.Of == "destination" && s.role == schema.RoleDestination) {
					c.cannot(r.Name, s.role, absent[s.role])
				}
			}
			continue
		}
		c.res.Sides = append(c.res.Sides, s.role)
		c.traceRules(s.m)
		c.phaseRules(s.m)
	}
	if dst != nil {
		c.res.Continuity = dst.Continuity
		c.timeData(dst)
		c.continuity(dst)
		c.memoryLate(dst)
	}
	c.sourceTimeData(src, dst, absent)
	return c.finish()
}

// checker accumulates a CheckResult, tracking each rule per side.
type checker struct {
	opts   Options
	res    CheckResult
	status map[RuleRef]*ruleStatus
}

type ruleStatus struct {
	ran, failed bool
	reasons     []string
}

func newChecker(opts Options) *checker {
	return &checker{opts: opts, status: make(map[RuleRef]*ruleStatus)}
}

func (c *checker) st(rule string, side schema.Role) *ruleStatus {
	k := RuleRef{Rule: rule, Side: side}
	s := c.status[k]
	if s == nil {
		s = &ruleStatus{}
		c.status[k] = s
	}
	return s
}

// ran records that a comparison of rule was made on side's evidence.
func (c *checker) ran(rule string, side schema.Role) {
	c.res.Checked++
	c.st(rule, side).ran = true
}

// cannot records that (part of) rule could not be checked on side.
func (c *checker) cannot(rule string, side schema.Role, reason string) {
	s := c.st(rule, side)
	s.reasons = append(s.reasons, reason)
}

func (c *checker) add(f Finding) {
	c.res.Findings = append(c.res.Findings, f)
	if f.Severity != SeverityNote {
		c.st(f.Rule, f.Side).failed = true
	}
}

func (c *checker) violation(rule string, side schema.Role, msg, want, got string) {
	c.add(Finding{Rule: rule, Side: side, Severity: SeverityViolation, Message: msg, Expected: want, Got: got})
}

func (c *checker) note(rule string, side schema.Role, msg string) {
	c.add(Finding{Rule: rule, Side: side, Severity: SeverityNote, Message: msg})
}

func (c *checker) eqInt(rule string, side schema.Role, msg string, want, got int64) {
	c.ran(rule, side)
	if want != got {
		c.violation(rule, side, msg, strconv.FormatInt(want, 10), strconv.FormatInt(got, 10))
	}
}

func (c *checker) eqUint(rule string, side schema.Role, msg string, want, got uint64) {
	c.ran(rule, side)
	if want != got {
		c.violation(rule, side, msg, strconv.FormatUint(want, 10), strconv.FormatUint(got, 10))
	}
}

func (c *checker) eqStr(rule string, side schema.Role, msg, want, got string) {
	c.ran(rule, side)
	if want != got {
		c.violation(rule, side, msg, want, got)
	}
}

// need reports whether m recorded every attribute in refs; when not, the
// rule is not verified on side, naming what is missing.
func (c *checker) need(rule string, side schema.Role, m *model.Side, refs ...model.AttrRef) bool {
	// Grouped by span or event: "TimeData event ... (kernel): a, b".
	var missing []string
	var at model.AttrRef
	for _, r := range refs {
		if m.Recorded(r) {
			continue
		}
		if loc := (model.AttrRef{Span: r.Span, Event: r.Event, Of: r.Of}); len(missing) > 0 && loc == at {
			missing[len(missing)-1] += ", " + r.Attr
			continue
		} else {
			at = loc
		}
		missing = append(missing, r.String())
	}
	if len(missing) > 0 {
		c.cannot(rule, side, "not recorded: "+strings.Join(missing, "; "))
		return false
	}
	return true
}

// finish sorts every rule applied into Verified or NotVerified, in the
// order of Rules, source before destination.
func (c *checker) finish() CheckResult {
	r := c.res
	r.Verified, r.NotVerified = []RuleRef{}, []Unverified{}
	for _, rule := range Rules {
		for _, side := range []schema.Role{schema.RoleSource, schema.RoleDestination, 0} {
			s := c.status[RuleRef{Rule: rule.Name, Side: side}]
			switch {
			case s == nil || s.failed:
			case len(s.reasons) > 0:
				r.NotVerified = append(r.NotVerified, Unverified{Rule: rule.Name, Side: side, Reason: strings.Join(s.reasons, "; ")})
			case s.ran:
				r.Verified = append(r.Verified, RuleRef{Rule: rule.Name, Side: side})
			}
		}
	}
	if r.Findings == nil {
		r.Findings = []Finding{}
	}
	return r
}
