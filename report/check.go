package report

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Rules Check applies; a Finding names one.
const (
	RuleTimeData         = "time-data"          // all three stages recorded
	RuleUptime           = "guest-uptime"       // uptime = source hrtime − source boot_hrtime
	RuleMigrationRow     = "migration-duration" // Migration row duration = migrate delta
	RuleTSCDelta         = "tsc-delta"          // userspace TSC delta = ⌊Δ·f/1e9⌋
	RuleBootHrtime       = "boot-hrtime"        // userspace boot_hrtime = dst hrtime − uptime − Δ
	RuleRowTSC           = "row-tsc"            // each row's TSC = previous + its adjustment (mod 2^64)
	RuleRowBootHrtime    = "row-boot-hrtime"    // each row's boot_hrtime = previous + its adjustment
	RuleKernelBoot       = "kernel-boot-hrtime" // kernel boot_hrtime = userspace's
	RuleGuestFreq        = "guest-freq"         // the frequency never changes
	RuleNegativeDelta    = "negative-delta"     // the wall-clock delta was clamped at 0
	RuleClockOffset      = "clock-offset"       // |offset| within its error bound
	RuleTSCMonotonic     = "tsc-monotonic"      // the guest TSC never went backwards
	RuleMemoryChecksum   = "memory-checksum"    // guest memory arrived intact
	RuleDeviceState      = "device-state"       // device state matches
	RuleTSCOffsetIgnored = "tsc-offset-ignored" // note: the VMM did not apply the TSC offset
)

// Severity says whether a Finding fails the check.
type Severity int

const (
	// SeverityNote is information that does not fail the check.
	SeverityNote Severity = iota
	// SeverityViolation fails the check.
	SeverityViolation
)

func (s Severity) String() string {
	if s == SeverityViolation {
		return "violation"
	}
	return "note"
}

// MarshalText encodes the severity as its name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Finding is one rule's verdict on one migration side.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Expected string   `json:"expected,omitempty"`
	Got      string   `json:"got,omitempty"`
}

// CheckResult is Check's verdict on one migration side.
type CheckResult struct {
	MigrationID string      `json:"migration_id"`
	Role        schema.Role `json:"-"`
	// Skipped explains why nothing was checked (e.g. the migration failed
	// before its time data was imported); Findings is then empty.
	Skipped    string            `json:"skipped,omitempty"`
	Findings   []Finding         `json:"findings"`
	Continuity *model.Continuity `json:"continuity,omitempty"`
	Checked    int               `json:"rules_checked"`
}

// OK reports whether no finding is a violation.
func (r CheckResult) OK() bool {
	for _, f := range r.Findings {
		if f.Severity == SeverityViolation {
			return false
		}
	}
	return true
}

// Violations returns the findings that fail the check.
func (r CheckResult) Violations() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == SeverityViolation {
			out = append(out, f)
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

// Check validates a destination's clock adjustments from its trace alone,
// and reports its clock offset and the guest continuity result. It
// recomputes every derived value from the recorded inputs; it does not
// call the code that made the adjustment.
func Check(m model.Side) CheckResult {
	r := CheckResult{MigrationID: m.ID, Role: m.Role, Continuity: m.Continuity}
	c := checker{res: &r}
	if m.Role != schema.RoleDestination {
		r.Skipped = "time data is recorded by the destination"
		return r
	}
	if !m.HasTimeData() {
		var missing []string
		for _, s := range schema.Stages {
			if !m.Stage(s).Present {
				missing = append(missing, s.String())
			}
		}
		if m.Result == schema.ResultFailure && len(missing) == len(schema.Stages) {
			r.Skipped = "the migration failed before its time data was imported"
			if m.ErrorPhase != "" {
				r.Skipped = fmt.Sprintf("the migration failed in %s, before its time data was imported", m.ErrorPhase)
			}
			return r
		}
		c.violation(RuleTimeData, "time-data stages missing", "migration, userspace and kernel", "missing "+strings.Join(missing, ", "))
		c.continuity(m.Continuity)
		return r
	}
	mig, usr, krn := m.Stage(schema.StageMigration), m.Stage(schema.StageUserspace), m.Stage(schema.StageKernel)
	delta := usr.MigrateDeltaNs

	c.eqInt(RuleUptime, "guest uptime = source hrtime − source boot_hrtime",
		mig.Hrtime-mig.BootHrtime, usr.GuestUptimeNs)
	c.eqInt(RuleMigrationRow, "Migration row duration = migration delta", delta, mig.DurationNs)
	c.eqUint(RuleGuestFreq, "userspace guest frequency = source's", mig.GuestFreq, usr.GuestFreq)
	c.eqUint(RuleGuestFreq, "kernel guest frequency = source's", mig.GuestFreq, krn.GuestFreq)

	if delta < 0 {
		c.violation(RuleTSCDelta, "migration delta is negative after clamping", ">= 0", strconv.FormatInt(delta, 10))
	} else if want, ok := TSCTicks(uint64(delta), mig.GuestFreq); !ok {
		c.violation(RuleTSCDelta, "⌊Δ·f/1e9⌋ overflows 64 bits", "a 64-bit tick count", "overflow")
	} else {
		c.eqUint(RuleTSCDelta, fmt.Sprintf("userspace TSC adjustment = ⌊%d ns × %d Hz / 1e9⌋", delta, mig.GuestFreq),
			want, usr.GuestTSCDelta)
	}
	c.eqInt(RuleBootHrtime, "userspace boot_hrtime = destination hrtime − uptime − Δ",
		usr.Hrtime-usr.GuestUptimeNs-delta, usr.BootHrtime)

	c.eqUint(RuleRowTSC, "Migration row TSC adjustment = 0", 0, mig.GuestTSCDelta)
	c.eqUint(RuleRowTSC, "Propolis TSC = Migration TSC + adjustment", mig.GuestTSC+usr.GuestTSCDelta, usr.GuestTSC)
	c.eqUint(RuleRowTSC, "Kernel TSC = Propolis TSC + adjustment", usr.GuestTSC+krn.GuestTSCDelta, krn.GuestTSC)
	c.eqInt(RuleRowBootHrtime, "Migration row boot_hrtime adjustment = 0", 0, mig.BootHrtimeDelta)
	c.eqInt(RuleRowBootHrtime, "Propolis boot_hrtime = Migration boot_hrtime + adjustment",
		mig.BootHrtime+usr.BootHrtimeDelta, usr.BootHrtime)
	c.eqInt(RuleRowBootHrtime, "Kernel boot_hrtime = Propolis boot_hrtime + adjustment",
		usr.BootHrtime+krn.BootHrtimeDelta, krn.BootHrtime)
	c.eqInt(RuleKernelBoot, "kernel boot_hrtime = userspace boot_hrtime", usr.BootHrtime, krn.BootHrtime)

	c.checked()
	if mig.MigrateDeltaNegative || usr.MigrateDeltaNegative {
		c.violation(RuleNegativeDelta,
			"the destination's wall clock was behind the source's: the migration delta was clamped to 0, so the guest lost the migration time",
			"destination wall clock >= source's", "negative delta clamped to 0")
	}
	if o := m.ClockOffset; o != nil {
		c.checked()
		if abs(o.OffsetNs) > o.ErrorNs {
			msg := fmt.Sprintf("the hosts' wall clocks differ by %d ns, beyond the %d ns measurement bound, so the migration delta is skewed by about that much", o.OffsetNs, o.ErrorNs)
			sev := SeverityViolation
			if o.SkewCorrected {
				msg = fmt.Sprintf("the hosts' wall clocks differ by %d ns (bound %d ns); the offset was corrected in the migration delta", o.OffsetNs, o.ErrorNs)
				sev = SeverityNote
			}
			c.add(Finding{Rule: RuleClockOffset, Severity: sev, Message: msg,
				Expected: fmt.Sprintf("|offset| <= %d ns", o.ErrorNs), Got: fmt.Sprintf("%d ns", o.OffsetNs)})
		}
	}
	c.continuity(m.Continuity)
	return r
}

type checker struct{ res *CheckResult }

func (c checker) checked()      { c.res.Checked++ }
func (c checker) add(f Finding) { c.res.Findings = append(c.res.Findings, f) }
func (c checker) violation(rule, msg, want, got string) {
	c.add(Finding{Rule: rule, Severity: SeverityViolation, Message: msg, Expected: want, Got: got})
}

func (c checker) eqInt(rule, msg string, want, got int64) {
	c.checked()
	if want != got {
		c.violation(rule, msg, strconv.FormatInt(want, 10), strconv.FormatInt(got, 10))
	}
}

func (c checker) eqUint(rule, msg string, want, got uint64) {
	c.checked()
	if want != got {
		c.violation(rule, msg, strconv.FormatUint(want, 10), strconv.FormatUint(got, 10))
	}
}

func (c checker) continuity(k *model.Continuity) {
	if k == nil {
		return
	}
	c.checked()
	if !k.TSCMonotonic {
		c.violation(RuleTSCMonotonic, fmt.Sprintf("the guest TSC went backwards across the handoff (%d samples)", k.TSCSamples), "monotonic", "not monotonic")
	}
	switch {
	case k.MemoryUnchecked:
		c.add(Finding{Rule: RuleMemoryChecksum, Severity: SeverityNote,
			Message: "guest memory was not checksummed (the source skipped it)"})
	case !k.MemoryChecksumOK:
		c.violation(RuleMemoryChecksum, "guest memory checksum differs after the migration", "match", "mismatch")
	}
	if !k.DeviceStateMatches {
		c.violation(RuleDeviceState, "device state differs after the migration", "match", "mismatch")
	}
	if k.TSCOffsetHonoured != nil && !*k.TSCOffsetHonoured {
		c.add(Finding{Rule: RuleTSCOffsetIgnored, Severity: SeverityNote,
			Message: "TSC offset not honoured: continuity reflects the host TSC"})
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
