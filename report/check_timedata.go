package report

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// The rules on the destination's time data, the source's record of it,
// and the guest's continuity at handoff.

// timeRules are the rules that read the destination's time-data stages.
var timeRules = []string{RuleUptime, RuleMigrationDelta, RuleMigrationRow, RuleTSCDelta, RuleBootHrtime,
	RuleRowTSC, RuleRowBootHrtime, RuleKernelBoot, RuleKernelTSC, RuleGuestFreq, RuleNegativeDelta}

// timeData checks the destination's clock adjustment from its stages.
func (c *checker) timeData(m *model.Side) {
	const d = schema.RoleDestination
	if !m.HasTimeData() {
		var missing []string
		for _, s := range schema.Stages {
			if !m.Stage(s).Present {
				missing = append(missing, s.String())
			}
		}
		if fp := failedPhase(m); cutShort(m) && len(missing) == len(schema.Stages) && (fp == 0 || fp <= schema.PhaseTimeData) {
			for _, r := range append([]string{RuleTimeData}, timeRules...) {
				c.cannot(r, d, fmt.Sprintf("the migration failed %s, before its time data was imported", failedIn(m)))
			}
		} else {
			c.ran(RuleTimeData, d)
			c.violation(RuleTimeData, d, "time-data stages missing", "migration, userspace and kernel", "missing "+strings.Join(missing, ", "))
			for _, r := range timeRules {
				c.cannot(r, d, "time-data stages missing")
			}
		}
		c.clockOffset(m)
		return
	}
	c.ran(RuleTimeData, d)
	mig, usr, krn := m.Stage(schema.StageMigration), m.Stage(schema.StageUserspace), m.Stage(schema.StageKernel)
	at := func(s schema.Stage, attrs ...string) []model.AttrRef {
		out := make([]model.AttrRef, len(attrs))
		for i, a := range attrs {
			out[i] = model.StageAttr(s, a)
		}
		return out
	}
	cat := func(sets ...[]model.AttrRef) []model.AttrRef {
		var out []model.AttrRef
		for _, s := range sets {
			out = append(out, s...)
		}
		return out
	}
	delta := usr.MigrateDeltaNs

	if c.need(RuleUptime, d, m, cat(at(schema.StageMigration, schema.AttrHrtime, schema.AttrBootHrtime), at(schema.StageUserspace, schema.AttrGuestUptimeNs))...) {
		c.eqInt(RuleUptime, d, "guest uptime = source hrtime − source boot_hrtime", mig.Hrtime-mig.BootHrtime, usr.GuestUptimeNs)
	}
	c.migrationDelta(m)
	if c.need(RuleMigrationRow, d, m, cat(at(schema.StageUserspace, schema.AttrMigrateDeltaNs), at(schema.StageMigration, schema.AttrStageDurationNs))...) {
		c.eqInt(RuleMigrationRow, d, "Migration row duration = migration delta", delta, mig.DurationNs)
	}
	if c.need(RuleGuestFreq, d, m, cat(at(schema.StageMigration, schema.AttrGuestFreq), at(schema.StageUserspace, schema.AttrGuestFreq), at(schema.StageKernel, schema.AttrGuestFreq))...) {
		c.eqUint(RuleGuestFreq, d, "userspace guest frequency = source's", mig.GuestFreq, usr.GuestFreq)
		c.eqUint(RuleGuestFreq, d, "kernel guest frequency = source's", mig.GuestFreq, krn.GuestFreq)
	}
	if c.need(RuleTSCDelta, d, m, cat(at(schema.StageUserspace, schema.AttrMigrateDeltaNs, schema.AttrGuestTSCDelta), at(schema.StageMigration, schema.AttrGuestFreq))...) {
		if delta < 0 {
			c.ran(RuleTSCDelta, d)
			c.violation(RuleTSCDelta, d, "migration delta is negative after clamping", ">= 0", strconv.FormatInt(delta, 10))
		} else if want, ok := TSCTicks(uint64(delta), mig.GuestFreq); !ok {
			c.ran(RuleTSCDelta, d)
			c.violation(RuleTSCDelta, d, "⌊Δ·f/1e9⌋ overflows 64 bits", "a 64-bit tick count", "overflow")
		} else {
			c.eqUint(RuleTSCDelta, d, fmt.Sprintf("userspace TSC adjustment = ⌊%d ns × %d Hz / 1e9⌋", delta, mig.GuestFreq),
				want, usr.GuestTSCDelta)
		}
	}
	if c.need(RuleBootHrtime, d, m, at(schema.StageUserspace, schema.AttrHrtime, schema.AttrGuestUptimeNs, schema.AttrMigrateDeltaNs, schema.AttrBootHrtime)...) {
		c.eqInt(RuleBootHrtime, d, "userspace boot_hrtime = destination hrtime − uptime − Δ",
			usr.Hrtime-usr.GuestUptimeNs-delta, usr.BootHrtime)
	}
	tscs := []string{schema.AttrGuestTSC, schema.AttrGuestTSCDelta}
	if c.need(RuleRowTSC, d, m, cat(at(schema.StageMigration, tscs...), at(schema.StageUserspace, tscs...), at(schema.StageKernel, tscs...))...) {
		c.eqUint(RuleRowTSC, d, "Migration row TSC adjustment = 0", 0, mig.GuestTSCDelta)
		c.eqUint(RuleRowTSC, d, "Propolis TSC = Migration TSC + adjustment", mig.GuestTSC+usr.GuestTSCDelta, usr.GuestTSC)
		c.eqUint(RuleRowTSC, d, "Kernel TSC = Propolis TSC + adjustment", usr.GuestTSC+krn.GuestTSCDelta, krn.GuestTSC)
	}
	boots := []string{schema.AttrBootHrtime, schema.AttrBootHrtimeDelta}
	if c.need(RuleRowBootHrtime, d, m, cat(at(schema.StageMigration, boots...), at(schema.StageUserspace, boots...), at(schema.StageKernel, boots...))...) {
		c.eqInt(RuleRowBootHrtime, d, "Migration row boot_hrtime adjustment = 0", 0, mig.BootHrtimeDelta)
		c.eqInt(RuleRowBootHrtime, d, "Propolis boot_hrtime = Migration boot_hrtime + adjustment",
			mig.BootHrtime+usr.BootHrtimeDelta, usr.BootHrtime)
		c.eqInt(RuleRowBootHrtime, d, "Kernel boot_hrtime = Propolis boot_hrtime + adjustment",
			usr.BootHrtime+krn.BootHrtimeDelta, krn.BootHrtime)
	}
	if c.need(RuleKernelBoot, d, m, cat(at(schema.StageUserspace, schema.AttrBootHrtime), at(schema.StageKernel, schema.AttrBootHrtime))...) {
		c.eqInt(RuleKernelBoot, d, "kernel boot_hrtime = userspace boot_hrtime", usr.BootHrtime, krn.BootHrtime)
	}
	if c.need(RuleKernelTSC, d, m, cat(at(schema.StageKernel, schema.AttrVMMLatencyNs, schema.AttrHrtime, schema.AttrGuestTSCDelta),
		at(schema.StageUserspace, schema.AttrHrtime, schema.AttrGuestFreq))...) {
		// The VMM corrects for the time from the caller's snapshot to its
		// receipt: latency = its hrtime − the snapshot's, in guest ticks
		// rounded down (vmm.PrepareTimeWrite; bhyve's vmm_data_write_vmm_time).
		lat := krn.VMMLatencyNs
		c.eqInt(RuleKernelTSC, d, "VMM latency = kernel hrtime − userspace hrtime", krn.Hrtime-usr.Hrtime, lat)
		if lat < 0 {
			c.ran(RuleKernelTSC, d)
			c.violation(RuleKernelTSC, d, "the VMM latency is negative", ">= 0", strconv.FormatInt(lat, 10))
		} else if want, ok := TSCTicks(uint64(lat), usr.GuestFreq); !ok {
			c.ran(RuleKernelTSC, d)
			c.violation(RuleKernelTSC, d, "⌊latency·f/1e9⌋ overflows 64 bits", "a 64-bit tick count", "overflow")
		} else {
			c.eqUint(RuleKernelTSC, d, fmt.Sprintf("kernel TSC correction = ⌊%d ns × %d Hz / 1e9⌋", lat, usr.GuestFreq),
				want, krn.GuestTSCDelta)
		}
	}

	neg := []model.AttrRef{model.StageAttr(schema.StageMigration, schema.AttrMigrateDeltaNegative), model.StageAttr(schema.StageUserspace, schema.AttrMigrateDeltaNegative)}
	if c.need(RuleNegativeDelta, d, m, neg...) {
		c.ran(RuleNegativeDelta, d)
		if mig.MigrateDeltaNegative || usr.MigrateDeltaNegative {
			c.violation(RuleNegativeDelta, d,
				"the destination's wall clock was behind the source's: the migration delta was clamped to 0, so the guest lost the migration time",
				"destination wall clock >= source's", "negative delta clamped to 0")
		}
	}
	c.clockOffset(m)
}

// migrationDelta recomputes the migration delta from the two wall clocks
// the stages recorded: the Migration stage's is the source's at export,
// the userspace stage's the destination's when it adjusted. With skew
// correction the source's clock is first moved onto the destination's by
// the measured offset (destination minus source).
func (c *checker) migrationDelta(m *model.Side) {
	const d = schema.RoleDestination
	mig, usr := m.Stage(schema.StageMigration), m.Stage(schema.StageUserspace)
	if !c.need(RuleMigrationDelta, d, m, model.StageAttr(schema.StageMigration, schema.AttrWallclock),
		model.StageAttr(schema.StageUserspace, schema.AttrWallclock), model.StageAttr(schema.StageUserspace, schema.AttrMigrateDeltaNs),
		model.StageAttr(schema.StageUserspace, schema.AttrMigrateDeltaNegative)) {
		return
	}
	o := m.ClockOffset
	clk := func(a string) model.AttrRef { return model.EventAttr(schema.PhaseSync, schema.EventClockOffset, "", a) }
	switch {
	case o == nil:
		c.cannot(RuleMigrationDelta, d, "no clock-offset event records whether skew correction was applied")
		return
	case o.Samples != 0 && !c.need(RuleMigrationDelta, d, m, clk(schema.AttrClockSkewCorrected)):
		return
	case o.Known() && o.SkewCorrected && !c.need(RuleMigrationDelta, d, m, clk(schema.AttrClockOffsetNs)):
		return
	}
	src, err1 := parseWallclock(mig.Wallclock)
	dst, err2 := parseWallclock(usr.Wallclock)
	if err1 != nil || err2 != nil {
		c.ran(RuleMigrationDelta, d)
		c.violation(RuleMigrationDelta, d, "a recorded wall clock is not SEC.NSEC", "SEC.NSEC",
			fmt.Sprintf("source %q, destination %q", mig.Wallclock, usr.Wallclock))
		return
	}
	raw := new(big.Int).Sub(dst, src)
	how := fmt.Sprintf("destination wall clock %s − source's %s", usr.Wallclock, mig.Wallclock)
	if o.Known() && o.SkewCorrected {
		raw.Sub(raw, big.NewInt(o.OffsetNs))
		how += fmt.Sprintf(" − measured offset %d ns", o.OffsetNs)
	}
	wantNeg := raw.Sign() < 0
	var want int64
	switch {
	case wantNeg:
	case !raw.IsInt64():
		c.ran(RuleMigrationDelta, d)
		c.violation(RuleMigrationDelta, d, how+" exceeds 64-bit ns: the adjustment should have been refused",
			"a delta that fits int64 ns", raw.String()+" ns")
		return
	default:
		want = raw.Int64()
	}
	for _, st := range schema.Stages {
		v := m.Stage(st)
		if m.Recorded(model.StageAttr(st, schema.AttrMigrateDeltaNs)) {
			c.eqInt(RuleMigrationDelta, d, fmt.Sprintf("%s stage's migration delta = %s, clamped at 0", st, how), want, v.MigrateDeltaNs)
		}
		if m.Recorded(model.StageAttr(st, schema.AttrMigrateDeltaNegative)) {
			c.eqStr(RuleMigrationDelta, d, fmt.Sprintf("%s stage's clamped flag = whether %s is negative", st, how),
				strconv.FormatBool(wantNeg), strconv.FormatBool(v.MigrateDeltaNegative))
		}
	}
}

// parseWallclock reads "SEC[.NSEC]" (up to nine fractional digits) as ns.
func parseWallclock(s string) (*big.Int, error) {
	sec, frac, dot := strings.Cut(s, ".")
	if sec == "" || (dot && (frac == "" || len(frac) > 9)) || strings.Trim(sec+frac, "0123456789") != "" {
		return nil, fmt.Errorf("wall clock %q: want SEC.NSEC", s)
	}
	frac += strings.Repeat("0", 9-len(frac))
	v, ok := new(big.Int).SetString(sec+frac, 10)
	if !ok {
		return nil, fmt.Errorf("wall clock %q: want SEC.NSEC", s)
	}
	return v, nil
}

// clockOffset reports the destination's clock offset against its bound.
func (c *checker) clockOffset(m *model.Side) {
	const d = schema.RoleDestination
	o := m.ClockOffset
	clk := func(a string) model.AttrRef { return model.EventAttr(schema.PhaseSync, schema.EventClockOffset, "", a) }
	switch {
	case o == nil:
		c.cannot(RuleClockOffset, d, "no clock-offset event")
		return
	case !c.need(RuleClockOffset, d, m, clk(schema.AttrClockSamples)):
		return
	case !o.Known():
		c.cannot(RuleClockOffset, d, "no usable clock sample: the hosts' offset was not measured")
		return
	case !c.need(RuleClockOffset, d, m, clk(schema.AttrClockOffsetNs), clk(schema.AttrClockOffsetErrorNs), clk(schema.AttrClockSkewCorrected)):
		return
	}
	c.ran(RuleClockOffset, d)
	if abs(o.OffsetNs) <= o.ErrorNs {
		return
	}
	if o.SkewCorrected {
		c.note(RuleClockOffset, d, fmt.Sprintf("the hosts' wall clocks differ by %d ns (bound %d ns); the offset was corrected in the migration delta", o.OffsetNs, o.ErrorNs))
		return
	}
	c.add(Finding{Rule: RuleClockOffset, Side: d, Severity: SeverityViolation,
		Message:  fmt.Sprintf("the hosts' wall clocks differ by %d ns, beyond the %d ns measurement bound, so the migration delta is skewed by about that much", o.OffsetNs, o.ErrorNs),
		Expected: fmt.Sprintf("|offset| <= %d ns", o.ErrorNs), Got: fmt.Sprintf("%d ns", o.OffsetNs)})
}

// sourceTimeData compares the time data the source read with what the
// destination recorded receiving.
func (c *checker) sourceTimeData(src, dst *model.Side, absent map[schema.Role]string) {
	const r = RuleSourceTimeData
	switch {
	case src == nil:
		c.cannot(r, 0, absent[schema.RoleSource])
		return
	case dst == nil:
		c.cannot(r, 0, absent[schema.RoleDestination])
		return
	case src.TimeRead == nil:
		if fp := failedPhase(src); cutShort(src) && fp != 0 && fp < schema.PhaseTimeData {
			c.cannot(r, 0, fmt.Sprintf("the source failed %s, before reading time data", failedIn(src)))
		} else {
			c.cannot(r, 0, "the source's TimeData span has no "+schema.EventTimeDataRead+" event")
		}
		return
	case !dst.Stage(schema.StageMigration).Present:
		if fp := failedPhase(dst); cutShort(dst) && (fp == 0 || fp <= schema.PhaseTimeData) {
			c.cannot(r, 0, fmt.Sprintf("the migration failed %s, before the destination recorded the time data", failedIn(dst)))
		} else {
			c.cannot(r, 0, "the destination recorded no Migration stage")
		}
		return
	}
	read := func(a string) model.AttrRef {
		return model.EventAttr(schema.PhaseTimeData, schema.EventTimeDataRead, "", a)
	}
	mig, t := dst.Stage(schema.StageMigration), src.TimeRead
	for _, f := range []struct {
		attr      string
		read, got string
	}{
		{schema.AttrGuestFreq, strconv.FormatUint(t.GuestFreq, 10), strconv.FormatUint(mig.GuestFreq, 10)},
		{schema.AttrGuestTSC, strconv.FormatUint(t.GuestTSC, 10), strconv.FormatUint(mig.GuestTSC, 10)},
		{schema.AttrBootHrtime, strconv.FormatInt(t.BootHrtime, 10), strconv.FormatInt(mig.BootHrtime, 10)},
		{schema.AttrHrtime, strconv.FormatInt(t.Hrtime, 10), strconv.FormatInt(mig.Hrtime, 10)},
		{schema.AttrWallclock, t.Wallclock, mig.Wallclock},
	} {
		okSrc := c.need(r, 0, src, read(f.attr))
		okDst := c.need(r, 0, dst, model.StageAttr(schema.StageMigration, f.attr))
		if okSrc && okDst {
			c.eqStr(r, 0, fmt.Sprintf("destination's Migration row %s = what the source read", f.attr), f.read, f.got)
		}
	}
}

// continuity reports the destination's check of the guest at handoff.
func (c *checker) continuity(m *model.Side) {
	const d = schema.RoleDestination
	rules := []string{RuleTSCMonotonic, RuleMemoryChecksum, RuleDeviceState}
	k := m.Continuity
	if k == nil {
		reason := "no continuity event on the destination's Finish span"
		if fp := failedPhase(m); cutShort(m) && fp != 0 && fp < schema.PhaseFinish {
			reason = fmt.Sprintf("the migration failed %s, before the handoff check", failedIn(m))
		}
		for _, r := range rules {
			c.cannot(r, d, reason)
		}
		return
	}
	ev := func(a string) model.AttrRef {
		return model.EventAttr(schema.PhaseFinish, schema.EventContinuity, "", a)
	}
	if c.need(RuleTSCMonotonic, d, m, ev(schema.AttrTSCMonotonic)) {
		c.ran(RuleTSCMonotonic, d)
		if !k.TSCMonotonic {
			c.violation(RuleTSCMonotonic, d, fmt.Sprintf("the guest TSC went backwards across the handoff (%d samples)", k.TSCSamples), "monotonic", "not monotonic")
		}
	}
	if k.MemoryUnchecked {
		reason := "the source skipped the memory checksum"
		if k.MemoryVerify == schema.MemoryVerifyAfter {
			reason = "memory verification after compares memory only after the handoff (rule " + RuleMemoryLate + ")"
		}
		c.cannot(RuleMemoryChecksum, d, reason)
	} else {
		c.ran(RuleMemoryChecksum, d)
		if !k.MemoryChecksumOK {
			c.violation(RuleMemoryChecksum, d, "guest memory checksum differs after the migration", "match", "mismatch")
		}
	}
	if c.need(RuleDeviceState, d, m, ev(schema.AttrDeviceStateMatches)) {
		c.ran(RuleDeviceState, d)
		if !k.DeviceStateMatches {
			c.violation(RuleDeviceState, d, "device state differs after the migration", "match", "mismatch")
		}
	}
	if k.TSCOffsetHonoured != nil && !*k.TSCOffsetHonoured {
		c.note(RuleTSCOffsetIgnored, d, "TSC offset not honoured: continuity reflects the host TSC")
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
