package report_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/tracing/schema"
)

// realTrace is a trace package migrate wrote of a real (simulated-guest)
// migration; see report/otlpread/migrate_trace_test.go.
var realTrace = filepath.Join("otlpread", "testdata", "migrate-sim.jsonl")

// doctored is a trace file held as one TracesData per line, to be edited
// span by span and read back the way `migtrace report` reads a file.
type doctored struct {
	t     *testing.T
	lines []ptrace.Traces
}

func loadTrace(t *testing.T, path string) *doctored {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := &doctored{t: t}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		d.lines = append(d.lines, td)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return d
}

// each calls fn with every span and the slice holding it, until fn
// returns true.
func (d *doctored) each(fn func(ss ptrace.SpanSlice, i int) bool) {
	for _, td := range d.lines {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				spans := sss.At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					if fn(spans, k) {
						return
					}
				}
			}
		}
	}
}

func roleOf(sp ptrace.Span) string {
	v, _ := sp.Attributes().Get(schema.AttrRole)
	return v.AsString()
}

// span returns the span named name of side role.
func (d *doctored) span(role schema.Role, name string) ptrace.Span {
	d.t.Helper()
	var out ptrace.Span
	found := false
	d.each(func(ss ptrace.SpanSlice, i int) bool {
		sp := ss.At(i)
		if sp.Name() == name && roleOf(sp) == role.String() {
			out, found = sp, true
		}
		return found
	})
	if !found {
		d.t.Fatalf("no %s span %q in the trace", role, name)
	}
	return out
}

// removeIf deletes every span fn selects.
func (d *doctored) removeIf(fn func(ptrace.Span) bool) {
	for _, td := range d.lines {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				sss.At(j).Spans().RemoveIf(fn)
			}
		}
	}
}

// remove deletes the span named name of side role.
func (d *doctored) remove(role schema.Role, name string) {
	d.t.Helper()
	id := d.span(role, name).SpanID()
	d.removeIf(func(s ptrace.Span) bool { return s.SpanID() == id })
}

// duplicate appends a copy of the span to the last line and returns it.
func (d *doctored) duplicate(role schema.Role, name string) ptrace.Span {
	sp := d.span(role, name)
	last := d.lines[len(d.lines)-1].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	cp := last.AppendEmpty()
	sp.CopyTo(cp)
	return cp
}

// event returns the attributes of the event named name on span sp whose
// of-attribute is of (any when of is "").
func (d *doctored) event(sp ptrace.Span, name, ofKey, of string) pcommon.Map {
	d.t.Helper()
	evs := sp.Events()
	for i := 0; i < evs.Len(); i++ {
		e := evs.At(i)
		if e.Name() != name {
			continue
		}
		if v, _ := e.Attributes().Get(ofKey); of == "" || v.AsString() == of {
			return e.Attributes()
		}
	}
	d.t.Fatalf("no event %s %s on %s", name, of, sp.Name())
	return pcommon.Map{}
}

// stage returns the attributes of time-data stage st's event.
func (d *doctored) stage(st schema.Stage) pcommon.Map {
	return d.event(d.span(schema.RoleDestination, "TimeData"), schema.EventTimeDataStage, schema.AttrTimeStage, st.String())
}

func (d *doctored) continuity() pcommon.Map {
	return d.event(d.span(schema.RoleDestination, "Finish"), schema.EventContinuity, "", "")
}

// root is the attributes of the destination's migration span.
func (d *doctored) root() pcommon.Map {
	return d.span(schema.RoleDestination, schema.SpanMigration).Attributes()
}

func (d *doctored) clock() pcommon.Map {
	return d.event(d.span(schema.RoleDestination, "Sync"), schema.EventClockOffset, "", "")
}

func (d *doctored) timeRead() pcommon.Map {
	return d.event(d.span(schema.RoleSource, "TimeData"), schema.EventTimeDataRead, "", "")
}

func getInt(m pcommon.Map, k string) int64 {
	v, _ := m.Get(k)
	return v.Int()
}

func getUint(m pcommon.Map, k string) uint64 {
	v, _ := m.Get(k)
	n, _ := strconv.ParseUint(v.AsString(), 10, 64)
	return n
}

func putUint(m pcommon.Map, k string, v uint64) { m.PutStr(k, strconv.FormatUint(v, 10)) }

func addUint(m pcommon.Map, k string, d uint64) { putUint(m, k, getUint(m, k)+d) }

func addInt(m pcommon.Map, k string, d int64) { m.PutInt(k, getInt(m, k)+d) }

// addWall moves the "SEC.NSEC" wall clock at key k by ns.
func addWall(t *testing.T, m pcommon.Map, k string, ns int64) {
	t.Helper()
	v, _ := m.Get(k)
	sec, frac, _ := strings.Cut(v.Str(), ".")
	s, err1 := strconv.ParseInt(sec, 10, 64)
	n, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("wall clock %q", v.Str())
	}
	total := s*1e9 + n + ns
	m.PutStr(k, fmt.Sprintf("%d.%09d", total/1e9, total%1e9))
}

// setDelta rewrites the destination's time data as migrate would have
// written it for migration delta delta (clamped when negative), every
// derived value consistent with it; the wall clocks are left as they are.
func (d *doctored) setDelta(delta int64, negative bool) {
	mig, usr, krn := d.stage(schema.StageMigration), d.stage(schema.StageUserspace), d.stage(schema.StageKernel)
	for _, m := range []pcommon.Map{mig, usr, krn} {
		m.PutInt(schema.AttrMigrateDeltaNs, delta)
		m.PutBool(schema.AttrMigrateDeltaNegative, negative)
	}
	mig.PutInt(schema.AttrStageDurationNs, delta)
	ticks, ok := report.TSCTicks(uint64(delta), getUint(mig, schema.AttrGuestFreq))
	if !ok {
		d.t.Fatal("TSC ticks overflow")
	}
	putUint(usr, schema.AttrGuestTSCDelta, ticks)
	putUint(usr, schema.AttrGuestTSC, getUint(mig, schema.AttrGuestTSC)+ticks)
	boot := getInt(usr, schema.AttrHrtime) - getInt(usr, schema.AttrGuestUptimeNs) - delta
	usr.PutInt(schema.AttrBootHrtime, boot)
	usr.PutInt(schema.AttrBootHrtimeDelta, boot-getInt(mig, schema.AttrBootHrtime))
	putUint(krn, schema.AttrGuestTSC, getUint(usr, schema.AttrGuestTSC)+getUint(krn, schema.AttrGuestTSCDelta))
	krn.PutInt(schema.AttrBootHrtime, boot)
}

// swapTimes exchanges the times (monotonic and wall) of two spans.
func swapTimes(a, b ptrace.Span) {
	ab, ae := getInt(a.Attributes(), schema.AttrPhaseBeginNs), getInt(a.Attributes(), schema.AttrPhaseEndNs)
	bb, be := getInt(b.Attributes(), schema.AttrPhaseBeginNs), getInt(b.Attributes(), schema.AttrPhaseEndNs)
	a.Attributes().PutInt(schema.AttrPhaseBeginNs, bb)
	a.Attributes().PutInt(schema.AttrPhaseEndNs, be)
	b.Attributes().PutInt(schema.AttrPhaseBeginNs, ab)
	b.Attributes().PutInt(schema.AttrPhaseEndNs, ae)
	as, aw := a.StartTimestamp(), a.EndTimestamp()
	a.SetStartTimestamp(b.StartTimestamp())
	a.SetEndTimestamp(b.EndTimestamp())
	b.SetStartTimestamp(as)
	b.SetEndTimestamp(aw)
}

// bytes writes the trace back as OTLP JSON Lines.
func (d *doctored) bytes() []byte {
	d.t.Helper()
	var buf bytes.Buffer
	for _, td := range d.lines {
		b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
		if err != nil {
			d.t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// check reads the trace as `migtrace report check` does and checks its
// one migration.
func (d *doctored) check(opts report.Options) report.CheckResult {
	d.t.Helper()
	r := otlpread.New()
	if err := r.Read(context.Background(), bytes.NewReader(d.bytes()), "doctored"); err != nil {
		d.t.Fatal(err)
	}
	ms, err := r.Migrations()
	if err != nil {
		d.t.Fatal(err)
	}
	res := report.Check(ms, opts)
	if len(res) != 1 {
		d.t.Fatalf("%d migrations checked, want 1", len(res))
	}
	return res[0]
}

const (
	src = schema.RoleSource
	dst = schema.RoleDestination
)

func TestRealTraceVerifiesEveryRule(t *testing.T) {
	r := loadTrace(t, realTrace).check(report.Options{})
	if !r.OK() || len(r.Findings) != 0 || len(r.NotVerified) != 0 {
		t.Fatalf("untouched trace: findings %+v, not verified %+v", r.Findings, r.NotVerified)
	}
	// Every rule but the note-only one, on each side it applies to.
	want := 0
	for _, rule := range report.Rules {
		switch rule.Of {
		case "each side":
			want += 2
		case "destination", "both sides":
			want++
		}
	}
	if want--; len(r.Verified) != want { // tsc-offset-ignored is a note
		t.Errorf("%d rules verified, want %d: %+v", len(r.Verified), want, r.Verified)
	}
}

// TestCheckDoctoredRealTrace breaks one thing at a time in a real
// migration's trace and expects exactly that rule to fire.
func TestCheckDoctoredRealTrace(t *testing.T) {
	tests := []struct {
		name     string
		doctor   func(t *testing.T, d *doctored)
		rule     string
		severity report.Severity
		opts     report.Options
	}{
		// The trace itself.
		{"destination root span removed", func(t *testing.T, d *doctored) {
			d.remove(dst, schema.SpanMigration)
		}, report.RuleRootSpan, report.SeverityIncomplete, report.Options{}},
		{"last line lost (a root span, written last)", func(t *testing.T, d *doctored) {
			last := d.lines[len(d.lines)-1].ResourceSpans().At(0).ScopeSpans().At(0).Spans()
			if last.Len() != 1 || last.At(0).Name() != schema.SpanMigration {
				t.Fatalf("the trace's last line is not a root span")
			}
			d.lines = d.lines[:len(d.lines)-1]
		}, report.RuleRootSpan, report.SeverityIncomplete, report.Options{}},
		{"a span id reused for other contents", func(t *testing.T, d *doctored) {
			cp := d.duplicate(dst, "TimeData")
			ev := d.event(cp, schema.EventTimeDataStage, schema.AttrTimeStage, schema.StageUserspace.String())
			addUint(ev, schema.AttrGuestTSC, 1)
		}, report.RuleSpanConflict, report.SeverityViolation, report.Options{}},
		{"a foreign migration's span relabelled with this one's id", func(t *testing.T, d *doctored) {
			sp := d.span(dst, "RamPull")
			sp.SetTraceID(pcommon.TraceID{0xf0, 0x1e, 0x19, 0x17})
			sp.SetSpanID(pcommon.SpanID{0xf0, 0x1e, 0x19, 0x17})
		}, report.RuleTraceID, report.SeverityViolation, report.Options{}},
		{"the migration failed", func(t *testing.T, d *doctored) {
			root := d.span(dst, schema.SpanMigration).Attributes()
			root.PutStr(schema.AttrResult, schema.ResultFailure)
			root.PutStr(schema.AttrErrorPhase, "Finish")
			root.PutStr(schema.AttrError, "resuming the migrated VM: boom")
		}, report.RuleResult, report.SeverityViolation, report.Options{}},
		{"the migration failed, failures allowed", func(t *testing.T, d *doctored) {
			root := d.span(dst, schema.SpanMigration).Attributes()
			root.PutStr(schema.AttrResult, schema.ResultFailure)
			root.PutStr(schema.AttrErrorPhase, "Finish")
		}, report.RuleResult, report.SeverityNote, report.Options{AllowFailed: true}},

		// Phase structure.
		{"destination DeviceState span removed", func(t *testing.T, d *doctored) {
			d.remove(dst, "DeviceState")
		}, report.RulePhaseSet, report.SeverityViolation, report.Options{}},
		{"destination Finish span removed", func(t *testing.T, d *doctored) {
			d.remove(dst, "Finish")
		}, report.RulePhaseSet, report.SeverityViolation, report.Options{}},
		{"source TimeData span removed", func(t *testing.T, d *doctored) {
			d.remove(src, "TimeData")
		}, report.RulePhaseSet, report.SeverityViolation, report.Options{}},
		{"a second TimeData span", func(t *testing.T, d *doctored) {
			d.duplicate(dst, "TimeData").SetSpanID(pcommon.SpanID{7, 7, 7})
		}, report.RulePhaseSet, report.SeverityViolation, report.Options{}},
		{"a span ending before it begins", func(t *testing.T, d *doctored) {
			a := d.span(dst, "RamPull").Attributes()
			b, e := getInt(a, schema.AttrPhaseBeginNs), getInt(a, schema.AttrPhaseEndNs)
			a.PutInt(schema.AttrPhaseBeginNs, e)
			a.PutInt(schema.AttrPhaseEndNs, b)
		}, report.RulePhaseDuration, report.SeverityViolation, report.Options{}},
		{"TimeData and DeviceState swapped in time", func(t *testing.T, d *doctored) {
			swapTimes(d.span(dst, "TimeData"), d.span(dst, "DeviceState"))
		}, report.RulePhaseOrder, report.SeverityViolation, report.Options{}},
		{"a phase span starting before its root", func(t *testing.T, d *doctored) {
			sp := d.span(src, "Sync")
			sp.SetStartTimestamp(d.span(src, schema.SpanMigration).StartTimestamp() - 1e6)
		}, report.RulePhaseInRoot, report.SeverityViolation, report.Options{}},

		// Time data.
		{"kernel stage missing", func(t *testing.T, d *doctored) {
			evs := d.span(dst, "TimeData").Events()
			evs.RemoveIf(func(e ptrace.SpanEvent) bool {
				v, _ := e.Attributes().Get(schema.AttrTimeStage)
				return v.AsString() == schema.StageKernel.String()
			})
		}, report.RuleTimeData, report.SeverityViolation, report.Options{}},
		{"destination clock 1 ms behind, delta clamped but not flagged", func(t *testing.T, d *doctored) {
			mig := d.stage(schema.StageMigration)
			v, _ := mig.Get(schema.AttrWallclock)
			d.stage(schema.StageUserspace).PutStr(schema.AttrWallclock, v.Str())
			addWall(t, d.stage(schema.StageUserspace), schema.AttrWallclock, -1e6)
			d.setDelta(0, false)
		}, report.RuleMigrationDelta, report.SeverityViolation, report.Options{}},
		{"delta 1 s off the wall clocks", func(t *testing.T, d *doctored) {
			d.setDelta(getInt(d.stage(schema.StageUserspace), schema.AttrMigrateDeltaNs)+1e9, false)
		}, report.RuleMigrationDelta, report.SeverityViolation, report.Options{}},
		{"destination clock 1 ms behind, clamped as migrate does", func(t *testing.T, d *doctored) {
			mig := d.stage(schema.StageMigration)
			v, _ := mig.Get(schema.AttrWallclock)
			d.stage(schema.StageUserspace).PutStr(schema.AttrWallclock, v.Str())
			addWall(t, d.stage(schema.StageUserspace), schema.AttrWallclock, -1e6)
			d.setDelta(0, true)
		}, report.RuleNegativeDelta, report.SeverityViolation, report.Options{}},
		{"Migration row duration is not the delta", func(t *testing.T, d *doctored) {
			addInt(d.stage(schema.StageMigration), schema.AttrStageDurationNs, 1000)
		}, report.RuleMigrationRow, report.SeverityViolation, report.Options{}},
		{"userspace TSC adjustment off by one", func(t *testing.T, d *doctored) {
			addUint(d.stage(schema.StageUserspace), schema.AttrGuestTSCDelta, 1)
			addUint(d.stage(schema.StageUserspace), schema.AttrGuestTSC, 1)
			addUint(d.stage(schema.StageKernel), schema.AttrGuestTSC, 1)
		}, report.RuleTSCDelta, report.SeverityViolation, report.Options{}},
		{"boot_hrtime forgot the delta", func(t *testing.T, d *doctored) {
			delta := getInt(d.stage(schema.StageUserspace), schema.AttrMigrateDeltaNs)
			addInt(d.stage(schema.StageUserspace), schema.AttrBootHrtime, delta)
			addInt(d.stage(schema.StageUserspace), schema.AttrBootHrtimeDelta, delta)
			addInt(d.stage(schema.StageKernel), schema.AttrBootHrtime, delta)
		}, report.RuleBootHrtime, report.SeverityViolation, report.Options{}},
		{"kernel row TSC not previous plus adjustment", func(t *testing.T, d *doctored) {
			addUint(d.stage(schema.StageKernel), schema.AttrGuestTSC, 7)
		}, report.RuleRowTSC, report.SeverityViolation, report.Options{}},
		{"userspace boot_hrtime adjustment misrecorded", func(t *testing.T, d *doctored) {
			addInt(d.stage(schema.StageUserspace), schema.AttrBootHrtimeDelta, 1)
		}, report.RuleRowBootHrtime, report.SeverityViolation, report.Options{}},
		{"kernel changed boot_hrtime", func(t *testing.T, d *doctored) {
			addInt(d.stage(schema.StageKernel), schema.AttrBootHrtime, 1000)
			addInt(d.stage(schema.StageKernel), schema.AttrBootHrtimeDelta, 1000)
		}, report.RuleKernelBoot, report.SeverityViolation, report.Options{}},
		{"kernel TSC correction changed", func(t *testing.T, d *doctored) {
			addUint(d.stage(schema.StageKernel), schema.AttrGuestTSCDelta, 3)
			addUint(d.stage(schema.StageKernel), schema.AttrGuestTSC, 3)
		}, report.RuleKernelTSC, report.SeverityViolation, report.Options{}},
		{"uptime misrecorded", func(t *testing.T, d *doctored) {
			for _, st := range schema.Stages {
				addInt(d.stage(st), schema.AttrGuestUptimeNs, 5)
			}
			addInt(d.stage(schema.StageUserspace), schema.AttrBootHrtime, -5)
			addInt(d.stage(schema.StageUserspace), schema.AttrBootHrtimeDelta, -5)
			addInt(d.stage(schema.StageKernel), schema.AttrBootHrtime, -5)
		}, report.RuleUptime, report.SeverityViolation, report.Options{}},
		{"kernel changed the frequency", func(t *testing.T, d *doctored) {
			addUint(d.stage(schema.StageKernel), schema.AttrGuestFreq, 1)
		}, report.RuleGuestFreq, report.SeverityViolation, report.Options{}},
		{"clock offset beyond its bound", func(t *testing.T, d *doctored) {
			c := d.clock()
			c.PutInt(schema.AttrClockOffsetNs, getInt(c, schema.AttrClockOffsetErrorNs)+1000)
		}, report.RuleClockOffset, report.SeverityViolation, report.Options{}},
		{"clock offset beyond its bound, corrected", func(t *testing.T, d *doctored) {
			c := d.clock()
			off := getInt(c, schema.AttrClockOffsetErrorNs) + 1000
			c.PutInt(schema.AttrClockOffsetNs, off)
			c.PutBool(schema.AttrClockSkewCorrected, true)
			// The source's clock, as read, was that much further behind.
			addWall(t, d.stage(schema.StageMigration), schema.AttrWallclock, -off)
			addWall(t, d.timeRead(), schema.AttrWallclock, -off)
		}, report.RuleClockOffset, report.SeverityNote, report.Options{}},

		// Both sides.
		{"the destination received other time data than the source read", func(t *testing.T, d *doctored) {
			addUint(d.timeRead(), schema.AttrGuestTSC, 1000)
		}, report.RuleSourceTimeData, report.SeverityViolation, report.Options{}},

		// Continuity.
		{"guest TSC went backwards", func(t *testing.T, d *doctored) {
			d.continuity().PutBool(schema.AttrTSCMonotonic, false)
		}, report.RuleTSCMonotonic, report.SeverityViolation, report.Options{}},
		{"memory checksum differs", func(t *testing.T, d *doctored) {
			d.continuity().PutBool(schema.AttrMemoryChecksumOK, false)
		}, report.RuleMemoryChecksum, report.SeverityViolation, report.Options{}},
		{"device state differs", func(t *testing.T, d *doctored) {
			d.continuity().PutBool(schema.AttrDeviceStateMatches, false)
		}, report.RuleDeviceState, report.SeverityViolation, report.Options{}},
		{"TSC offset not honoured", func(t *testing.T, d *doctored) {
			d.continuity().PutBool(schema.AttrTSCOffsetHonoured, false)
		}, report.RuleTSCOffsetIgnored, report.SeverityNote, report.Options{}},

		// Memory compared after the handoff (the real trace's migration
		// used the default, sampled verification).
		{"memory differs, found after the handoff", func(t *testing.T, d *doctored) {
			d.root().PutStr(schema.AttrMemoryLateResult, schema.MemoryLateMismatch)
		}, report.RuleMemoryLate, report.SeverityViolation, report.Options{}},
		{"the comparison after the handoff never made", func(t *testing.T, d *doctored) {
			d.root().PutStr(schema.AttrMemoryLateResult, schema.MemoryLateUnavailable)
			d.root().PutStr(schema.AttrMemoryLateError, "peer closed the connection")
		}, report.RuleMemoryLate, report.SeverityViolation, report.Options{}},
		{"the verdict after the handoff removed", func(t *testing.T, d *doctored) {
			d.root().Remove(schema.AttrMemoryLateResult)
			d.root().Remove(schema.AttrMemoryLateNs)
		}, report.RuleMemoryLate, report.SeverityViolation, report.Options{}},
	}
	fired := make(map[string]bool)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := loadTrace(t, realTrace)
			tt.doctor(t, d)
			r := d.check(tt.opts)
			if len(r.Findings) == 0 {
				t.Fatalf("no finding; want %s (not verified: %+v)", tt.rule, r.NotVerified)
			}
			for _, f := range r.Findings {
				if f.Rule != tt.rule || f.Severity != tt.severity {
					t.Errorf("finding %+v, want only rule %s, %v", f, tt.rule, tt.severity)
				}
				if f.Severity == report.SeverityViolation && (f.Expected == "" || f.Got == "" || f.Message == "") {
					t.Errorf("violation lacks expected/got/message: %+v", f)
				}
			}
			if r.OK() != (tt.severity == report.SeverityNote) {
				t.Errorf("OK() = %v with %v findings", r.OK(), tt.severity)
			}
			fired[tt.rule] = true
		})
	}
	for _, rule := range report.Rules {
		if !fired[rule.Name] {
			t.Errorf("no doctored trace fires rule %s", rule.Name)
		}
	}
}

// TestCheckNamesWhatIsNotRecorded: an attribute stripped from a real
// trace leaves exactly the rules that read it not verified, naming it;
// nothing is taken as 0 or false.
func TestCheckNamesWhatIsNotRecorded(t *testing.T) {
	tests := []struct {
		name   string
		doctor func(d *doctored)
		rules  []string
		attr   string
	}{
		{"kernel latency", func(d *doctored) { d.stage(schema.StageKernel).Remove(schema.AttrVMMLatencyNs) },
			[]string{report.RuleKernelTSC}, schema.AttrVMMLatencyNs},
		{"TSC monotonic flag", func(d *doctored) { d.continuity().Remove(schema.AttrTSCMonotonic) },
			[]string{report.RuleTSCMonotonic}, schema.AttrTSCMonotonic},
		{"destination wall clock", func(d *doctored) { d.stage(schema.StageUserspace).Remove(schema.AttrWallclock) },
			[]string{report.RuleMigrationDelta}, schema.AttrWallclock},
		{"the source's TSC as read", func(d *doctored) { d.timeRead().Remove(schema.AttrGuestTSC) },
			[]string{report.RuleSourceTimeData}, schema.AttrGuestTSC},
		{"a phase's monotonic end", func(d *doctored) { d.span(dst, "RamPull").Attributes().Remove(schema.AttrPhaseEndNs) },
			[]string{report.RulePhaseDuration, report.RulePhaseOrder}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := loadTrace(t, realTrace)
			tt.doctor(d)
			r := d.check(report.Options{})
			if !r.OK() || len(r.Findings) != 0 {
				t.Fatalf("findings %+v", r.Findings)
			}
			var got []string
			for _, u := range r.NotVerified {
				got = append(got, u.Rule)
				if tt.attr != "" && !strings.Contains(u.Reason, tt.attr) {
					t.Errorf("%s: reason %q does not name %s", u.Rule, u.Reason, tt.attr)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.rules, ",") {
				t.Errorf("not verified %v, want %v", got, tt.rules)
			}
		})
	}
}

// TestCheckSourceAbsent: with only the destination's spans, the
// cross-check with the source is not verified, not passed.
func TestCheckSourceAbsent(t *testing.T) {
	d := loadTrace(t, realTrace)
	d.removeIf(func(sp ptrace.Span) bool { return roleOf(sp) == src.String() })
	r := d.check(report.Options{})
	if !r.OK() || len(r.Sides) != 1 || r.Sides[0] != dst {
		t.Fatalf("destination only: %+v", r)
	}
	for _, u := range r.NotVerified {
		if u.Side == dst {
			t.Errorf("destination rule %s not verified: %s", u.Rule, u.Reason)
		}
		if !strings.Contains(u.Reason, "source's own spans are not in the input") {
			t.Errorf("%s: reason %q", u.Rule, u.Reason)
		}
	}
	if !hasUnverified(r, report.RuleSourceTimeData, "source") {
		t.Errorf("the source cross-check is not said to be unverified: %+v", r.NotVerified)
	}
}
