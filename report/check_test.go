package report_test

import (
	"math"
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

func TestCheckSeedIsClean(t *testing.T) {
	r := report.Check(reporttest.SeedDestination())
	if !r.OK() || len(r.Findings) != 0 || r.Skipped != "" {
		t.Fatalf("seed destination: %+v", r)
	}
	if r.Checked < 12 {
		t.Errorf("only %d rules checked", r.Checked)
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
			stage(m, schema.StageMigration).MigrateDeltaNegative = true
			stage(m, schema.StageUserspace).MigrateDeltaNegative = true
		}, report.RuleNegativeDelta, report.SeverityViolation},
		{"clock offset beyond bound", func(m *model.Side) {
			m.ClockOffset.OffsetNs = -250000
		}, report.RuleClockOffset, report.SeverityViolation},
		{"clock offset beyond bound but corrected", func(m *model.Side) {
			m.ClockOffset.OffsetNs, m.ClockOffset.SkewCorrected = 250000, true
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
			stage(m, schema.StageKernel).BootHrtime = u.BootHrtime
		}, report.RuleTSCDelta, report.SeverityViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := reporttest.SeedDestination()
			tt.doctor(&m)
			r := report.Check(m)
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

func TestCheckSkips(t *testing.T) {
	if r := report.Check(reporttest.SeedSource()); r.Skipped == "" {
		t.Errorf("source side not skipped: %+v", r)
	}
	m := reporttest.SeedDestination()
	m.Stages = [3]model.StageValues{}
	m.Result, m.ErrorPhase = schema.ResultFailure, "RamPushPrePause"
	r := report.Check(m)
	if !r.OK() || !strings.Contains(r.Skipped, "RamPushPrePause") {
		t.Errorf("failed-before-time-data side: %+v", r)
	}
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
