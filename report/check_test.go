package report_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

func stage(m *model.Side, s schema.Stage) *model.StageValues {
	return &m.Stages[model.StageIndex(s)]
}

// setDelta rewrites m's time data as if the migration delta had been
// delta (clamped when negative) with the destination's wall clock at
// dstWall, every derived value consistent with it.
func setDelta(m *model.Side, dstWall string, delta int64, negative bool) {
	mig, usr, krn := stage(m, schema.StageMigration), stage(m, schema.StageUserspace), stage(m, schema.StageKernel)
	usr.Wallclock = dstWall
	for _, s := range schema.Stages {
		stage(m, s).MigrateDeltaNs, stage(m, s).MigrateDeltaNegative = delta, negative
	}
	mig.DurationNs = delta
	ticks, _ := report.TSCTicks(uint64(delta), mig.GuestFreq)
	usr.GuestTSCDelta, usr.GuestTSC = ticks, mig.GuestTSC+ticks
	usr.BootHrtime = usr.Hrtime - usr.GuestUptimeNs - delta
	usr.BootHrtimeDelta = usr.BootHrtime - mig.BootHrtime
	krn.GuestTSC, krn.BootHrtime = usr.GuestTSC+krn.GuestTSCDelta, usr.BootHrtime
}

func checkOne(m model.Side) report.CheckResult {
	return report.CheckMigration([]model.Side{m}, report.Options{})
}

// TestCheckSeedIsClean: both sides of the seed pass, and what the seed
// cannot show is said, not passed: the source's capture has no Pause
// phase nor a protocol version, and the kernel's latency was not
// recorded.
func TestCheckSeedIsClean(t *testing.T) {
	r := report.CheckMigration([]model.Side{reporttest.SeedSource(), reporttest.SeedDestination()}, report.Options{})
	if !r.OK() || len(r.Findings) != 0 || r.Verdict() != "OK" {
		t.Fatalf("seed: %+v", r)
	}
	if r.Checked < 12 {
		t.Errorf("only %d comparisons made", r.Checked)
	}
	var unverified []string
	for _, u := range r.NotVerified {
		unverified = append(unverified, u.Rule+"/"+u.Side.String())
	}
	if want := []string{report.RulePhaseSet + "/source", report.RuleKernelTSC + "/destination"}; !slices.Equal(unverified, want) {
		t.Errorf("not verified %v, want %v: %+v", unverified, want, r.NotVerified)
	}
	if len(r.Verified)+len(r.NotVerified) != 2*8+16+1 { // 8 rules a side, 16 of the destination, 1 across
		t.Errorf("%d rules verified and %d not: every rule must be in one list", len(r.Verified), len(r.NotVerified))
	}
}

// TestCheckDoctored breaks one thing at a time and expects exactly that
// rule to be named.
func TestCheckDoctored(t *testing.T) {
	honouredFalse := false
	tests := []struct {
		name     string
		doctor   func(m *model.Side)
		rule     string
		severity report.Severity
	}{
		{"tsc delta off by one", func(m *model.Side) {
			u := stage(m, schema.StageUserspace)
			u.GuestTSCDelta++
			u.GuestTSC++
			k := stage(m, schema.StageKernel)
			k.GuestTSC++
		}, report.RuleTSCDelta, report.SeverityViolation},
		{"boot_hrtime forgot delta", func(m *model.Side) {
			u := stage(m, schema.StageUserspace)
			u.BootHrtime += reporttest.SeedMigrateDeltaNs
			u.BootHrtimeDelta += reporttest.SeedMigrateDeltaNs
			k := stage(m, schema.StageKernel)
			k.BootHrtime = u.BootHrtime
		}, report.RuleBootHrtime, report.SeverityViolation},
		{"kernel row TSC not previous plus adjustment", func(m *model.Side) {
			stage(m, schema.StageKernel).GuestTSC += 7
		}, report.RuleRowTSC, report.SeverityViolation},
		{"userspace boot delta misrecorded", func(m *model.Side) {
			stage(m, schema.StageUserspace).BootHrtimeDelta = 0
		}, report.RuleRowBootHrtime, report.SeverityViolation},
		{"kernel changed boot_hrtime", func(m *model.Side) {
			k := stage(m, schema.StageKernel)
			k.BootHrtime += 1000
			k.BootHrtimeDelta += 1000
		}, report.RuleKernelBoot, report.SeverityViolation},
		{"uptime misrecorded", func(m *model.Side) {
			for _, s := range schema.Stages {
				stage(m, s).GuestUptimeNs += 5
			}
			u := stage(m, schema.StageUserspace)
			u.BootHrtime -= 5
			u.BootHrtimeDelta -= 5
			stage(m, schema.StageKernel).BootHrtime -= 5
		}, report.RuleUptime, report.SeverityViolation},
		{"kernel changed the frequency", func(m *model.Side) {
			stage(m, schema.StageKernel).GuestFreq++
		}, report.RuleGuestFreq, report.SeverityViolation},
		{"Migration row duration is not the delta", func(m *model.Side) {
			stage(m, schema.StageMigration).DurationNs += 1000
		}, report.RuleMigrationRow, report.SeverityViolation},
		{"negative delta clamped", func(m *model.Side) {
			// The destination's clock 1 ms behind the source's, clamped
			// and flagged as migrate does.
			setDelta(m, "1683850713.580965192", 0, true)
		}, report.RuleNegativeDelta, report.SeverityViolation},
		{"clock offset beyond bound", func(m *model.Side) {
			m.ClockOffset.OffsetNs = -250000
		}, report.RuleClockOffset, report.SeverityViolation},
		{"clock offset beyond bound but corrected", func(m *model.Side) {
			m.ClockOffset.OffsetNs, m.ClockOffset.SkewCorrected = 250000, true
			// The correction took the offset out of the delta: the
			// source's clock read 250 µs further behind.
			stage(m, schema.StageMigration).Wallclock = "1683850713.581715192"
		}, report.RuleClockOffset, report.SeverityNote},
		{"TSC went backwards", func(m *model.Side) { m.Continuity.TSCMonotonic = false }, report.RuleTSCMonotonic, report.SeverityViolation},
		{"memory checksum", func(m *model.Side) { m.Continuity.MemoryChecksumOK = false }, report.RuleMemoryChecksum, report.SeverityViolation},
		{"device state", func(m *model.Side) { m.Continuity.DeviceStateMatches = false }, report.RuleDeviceState, report.SeverityViolation},
		{"TSC offset not honoured", func(m *model.Side) { m.Continuity.TSCOffsetHonoured = &honouredFalse }, report.RuleTSCOffsetIgnored, report.SeverityNote},
		{"missing kernel stage", func(m *model.Side) { *stage(m, schema.StageKernel) = model.StageValues{} }, report.RuleTimeData, report.SeverityViolation},
		{"TSC adjustment overflows", func(m *model.Side) {
			for _, s := range schema.Stages {
				stage(m, s).GuestFreq = math.MaxUint64
				stage(m, s).MigrateDeltaNs = 1e12
				stage(m, s).DurationNs = 1e12
			}
			u := stage(m, schema.StageUserspace)
			u.BootHrtime = u.Hrtime - u.GuestUptimeNs - 1e12
			u.BootHrtimeDelta = u.BootHrtime - stage(m, schema.StageMigration).BootHrtime
			u.Wallclock = "1683851713.581965192" // 1e12 ns after the source's
			stage(m, schema.StageKernel).BootHrtime = u.BootHrtime
		}, report.RuleTSCDelta, report.SeverityViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := reporttest.SeedDestination()
			tt.doctor(&m)
			r := checkOne(m)
			if len(r.Findings) != 1 {
				t.Fatalf("findings = %+v, want exactly one for %s", r.Findings, tt.rule)
			}
			f := r.Findings[0]
			if f.Rule != tt.rule || f.Severity != tt.severity {
				t.Fatalf("finding = %+v, want rule %s severity %v", f, tt.rule, tt.severity)
			}
			if r.OK() != (tt.severity == report.SeverityNote) {
				t.Errorf("OK() = %v", r.OK())
			}
			if f.Severity == report.SeverityViolation && (f.Expected == "" || f.Got == "" || f.Message == "") {
				t.Errorf("violation lacks expected/got/message: %+v", f)
			}
		})
	}
}

// TestCheckWithoutEvidence: a side absent, or a failure before the time
// data, leaves rules not verified, naming why; a failure fails the check
// unless allowed.
func TestCheckWithoutEvidence(t *testing.T) {
	r := checkOne(reporttest.SeedSource())
	if !r.OK() || !hasUnverified(r, report.RuleTSCDelta, "destination's spans are not in the input") ||
		!hasUnverified(r, report.RuleSourceTimeData, "destination's spans are not in the input") {
		t.Errorf("source only: %+v", r)
	}

	m := reporttest.SeedDestination()
	m.Stages = [3]model.StageValues{}
	m.Phases = m.Phases[:2]
	m.Phases[1].Failed, m.Phases[1].Error = true, "boom"
	m.Result, m.Error, m.ErrorPhase = schema.ResultFailure, "boom", "RamPushPrePause"
	m.Blackout, m.Continuity = nil, nil
	r = checkOne(m)
	if v := r.Violations(); r.OK() || len(v) != 1 || v[0].Rule != report.RuleResult || !strings.Contains(v[0].Got, "RamPushPrePause") {
		t.Errorf("failed, not allowed: %+v", r)
	}
	r = report.CheckMigration([]model.Side{m}, report.Options{AllowFailed: true})
	if !r.OK() || !hasUnverified(r, report.RuleTSCDelta, "failed in RamPushPrePause, before its time data") ||
		!hasUnverified(r, report.RuleTSCMonotonic, "failed in RamPushPrePause, before the handoff") ||
		len(r.Notes()) != 1 || r.Notes()[0].Rule != report.RuleResult {
		t.Errorf("failed, allowed: %+v", r)
	}
}

func hasUnverified(r report.CheckResult, rule, reason string) bool {
	for _, u := range r.NotVerified {
		if u.Rule == rule && strings.Contains(u.Reason, reason) {
			return true
		}
	}
	return false
}

func TestTSCTicks(t *testing.T) {
	tests := []struct {
		ns, freq, want uint64
		ok             bool
	}{
		{reporttest.SeedMigrateDeltaNs, reporttest.SeedGuestFreq, 285087, true},
		{1e9, 3e9, 3e9, true},
		{0, 3e9, 0, true},
		{math.MaxUint64, 1e9, math.MaxUint64, true},
		{math.MaxUint64, 1e9 + 1, 0, false},
	}
	for _, tt := range tests {
		got, ok := report.TSCTicks(tt.ns, tt.freq)
		if got != tt.want || ok != tt.ok {
			t.Errorf("TSCTicks(%d, %d) = %d, %v; want %d, %v", tt.ns, tt.freq, got, ok, tt.want, tt.ok)
		}
	}
}
