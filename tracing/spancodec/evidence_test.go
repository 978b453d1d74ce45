package spancodec_test

import (
	"cmp"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// spanNamed returns the span of td named name.
func spanNamed(t *testing.T, td ptrace.Traces, name string) ptrace.Span {
	t.Helper()
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < spans.Len(); i++ {
		if spans.At(i).Name() == name {
			return spans.At(i)
		}
	}
	t.Fatalf("no span %q", name)
	return ptrace.Span{}
}

// appendCopy appends a copy of span name to td's spans and returns it.
func appendCopy(t *testing.T, td ptrace.Traces, name string) ptrace.Span {
	t.Helper()
	sp := spanNamed(t, td, name)
	cp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
	sp.CopyTo(cp)
	return cp
}

func decodeOne(t *testing.T, td ptrace.Traces) model.Side {
	t.Helper()
	dec := spancodec.NewDecoder()
	if err := dec.AddTraces(td); err != nil {
		t.Fatal(err)
	}
	sides := dec.Sides()
	if len(sides) != 1 {
		t.Fatalf("decoded %d sides, want 1", len(sides))
	}
	return sides[0]
}

// TestDecoderRecordsEvidence: what is wrong with a trace itself is kept
// on the side, and never silently resolved by preferring one span.
func TestDecoderRecordsEvidence(t *testing.T) {
	td := spancodec.TraceID(&model.Side{ID: reporttest.SeedMigrationID})
	foreign := pcommon.TraceID{0xf0, 0x0f}
	usr := func(m model.Side) uint64 { return m.Stage(schema.StageUserspace).GuestTSC }
	tests := []struct {
		name   string
		doctor func(t *testing.T, td ptrace.Traces)
		check  func(t *testing.T, m model.Side)
	}{
		{"a span exported twice is folded once", func(t *testing.T, td ptrace.Traces) {
			appendCopy(t, td, "TimeData")
			appendCopy(t, td, schema.SpanMigration)
		}, func(t *testing.T, m model.Side) {
			if len(m.Conflicts) != 0 || len(m.Phases) != 8 {
				t.Errorf("conflicts %+v, %d phases", m.Conflicts, len(m.Phases))
			}
		}},
		{"the same span id with other contents is a conflict; the first is kept", func(t *testing.T, td ptrace.Traces) {
			cp := appendCopy(t, td, "TimeData")
			cp.Events().At(1).Attributes().PutStr(schema.AttrGuestTSC, "1")
		}, func(t *testing.T, m model.Side) {
			want := []model.SpanConflict{{SpanID: spancodec.SpanID(m.ID, m.Role, schema.PhaseTimeData).String(), Span: "TimeData", Kind: model.ConflictSpanID}}
			if !reflect.DeepEqual(m.Conflicts, want) || usr(m) != reporttest.SeedUserTSC {
				t.Errorf("conflicts %+v, userspace TSC %d", m.Conflicts, usr(m))
			}
		}},
		{"a span id reused by another migration's span makes no side of its own", func(t *testing.T, td ptrace.Traces) {
			cp := appendCopy(t, td, "RamPull")
			cp.Attributes().PutStr(schema.AttrMigrationID, "another")
		}, func(t *testing.T, m model.Side) {
			if len(m.Conflicts) != 1 || m.Conflicts[0].Kind != model.ConflictSpanID || m.Conflicts[0].Span != "RamPull" {
				t.Errorf("conflicts %+v", m.Conflicts)
			}
		}},
		{"a second span for a phase is set aside, events and all", func(t *testing.T, td ptrace.Traces) {
			cp := appendCopy(t, td, "TimeData")
			cp.SetSpanID(pcommon.SpanID{1, 2, 3})
			cp.Events().At(1).Attributes().PutStr(schema.AttrGuestTSC, "1")
		}, func(t *testing.T, m model.Side) {
			want := []model.SpanConflict{{SpanID: pcommon.SpanID{1, 2, 3}.String(), Span: "TimeData", Kind: model.ConflictDuplicate}}
			if !reflect.DeepEqual(m.Conflicts, want) || usr(m) != reporttest.SeedUserTSC {
				t.Errorf("conflicts %+v, userspace TSC %d", m.Conflicts, usr(m))
			}
		}},
		{"a span of another trace is named", func(t *testing.T, td ptrace.Traces) {
			spanNamed(t, td, "RamPull").SetTraceID(foreign)
		}, func(t *testing.T, m model.Side) {
			want := []model.ForeignSpan{{SpanID: spancodec.SpanID(m.ID, m.Role, schema.PhaseRamPull).String(), Span: "RamPull", TraceID: foreign.String()}}
			if !reflect.DeepEqual(m.ForeignSpans, want) || m.TraceID != td.String() {
				t.Errorf("foreign %+v, trace %s", m.ForeignSpans, m.TraceID)
			}
		}},
		{"without a root, the trace most spans carry is the side's", func(t *testing.T, td ptrace.Traces) {
			spanNamed(t, td, schema.SpanMigration).SetName("gone")
			spanNamed(t, td, "Sync").SetTraceID(foreign)
		}, func(t *testing.T, m model.Side) {
			if !m.RootMissing || m.TraceID != td.String() || len(m.ForeignSpans) != 1 || m.ForeignSpans[0].Span != "Sync" {
				t.Errorf("root missing %v, trace %s, foreign %+v", m.RootMissing, m.TraceID, m.ForeignSpans)
			}
		}},
		{"an absent attribute is not recorded, not zero", func(t *testing.T, td ptrace.Traces) {
			spanNamed(t, td, "TimeData").Events().At(2).Attributes().Remove(schema.AttrGuestTSCDelta)
			spanNamed(t, td, "Finish").Events().At(1).Attributes().Remove(schema.AttrTSCMonotonic)
			spanNamed(t, td, "Sync").Attributes().Remove(schema.AttrPhaseEndNs)
		}, func(t *testing.T, m model.Side) {
			for _, r := range []model.AttrRef{
				model.StageAttr(schema.StageKernel, schema.AttrGuestTSCDelta),
				model.EventAttr(schema.PhaseFinish, schema.EventContinuity, "", schema.AttrTSCMonotonic),
				model.PhaseAttr(schema.PhaseSync, schema.AttrPhaseEndNs),
			} {
				if m.Recorded(r) {
					t.Errorf("%v recorded as carried; unrecorded: %v", r, m.Unrecorded)
				}
			}
			if !m.Recorded(model.StageAttr(schema.StageUserspace, schema.AttrGuestTSCDelta)) {
				t.Errorf("the userspace stage's delta is listed as unrecorded")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := reporttest.Traces(reporttest.SeedDestination())
			tt.doctor(t, tr)
			m := decodeOne(t, tr)
			tt.check(t, m)
		})
	}
}

// TestUnrecordedRoundTrips: a side that lacks attributes encodes without
// them, so it decodes to itself.
func TestUnrecordedRoundTrips(t *testing.T) {
	m := reporttest.SeedDestination()
	if len(m.Unrecorded) == 0 {
		t.Fatal("the seed destination records every attribute; this test needs one that does not")
	}
	m.Unrecorded = append(m.Unrecorded, model.RootAttr(schema.AttrBytesSent),
		model.EventAttr(schema.PhaseFinish, schema.EventContinuity, "", schema.AttrDeviceStateMatches))
	m.Continuity.DeviceStateMatches = false
	want := utc([]model.Side{m})
	// The decoder lists what is missing in a fixed order.
	got := roundTrip(t, m)
	if !reflect.DeepEqual(got[0].Unrecorded, sortedRefs(want[0].Unrecorded)) {
		t.Fatalf("unrecorded after a round trip:\n%v\nwant\n%v", got[0].Unrecorded, want[0].Unrecorded)
	}
	again := roundTrip(t, got...)
	if !reflect.DeepEqual(again, got) {
		t.Fatalf("not stable:\n%+v\n%+v", again, got)
	}
}

func sortedRefs(rs []model.AttrRef) []model.AttrRef {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b model.AttrRef) int {
		return cmp.Or(strings.Compare(a.Span, b.Span), strings.Compare(a.Event, b.Event),
			strings.Compare(a.Of, b.Of), strings.Compare(a.Attr, b.Attr))
	})
	return out
}

// A throttle step whose percentage is absent is known to have happened
// after its round, at an unknown percentage: the attribute is not
// recorded, for that step only.
func TestThrottleStepUnrecorded(t *testing.T) {
	src := reporttest.SeedSource()
	src.ThrottleSteps = []model.ThrottleStep{{Round: 1, Percent: 20}, {Round: 3, Percent: 30}}
	tr := reporttest.Traces(src)
	evs := spanNamed(t, tr, schema.PhaseRamPushPrePause.String()).Events()
	removed := false
	for i := 0; i < evs.Len(); i++ {
		ev := evs.At(i)
		if r, _ := ev.Attributes().Get(schema.AttrRAMRound); ev.Name() == schema.EventThrottle && r.Int() == 3 {
			removed = ev.Attributes().Remove(schema.AttrThrottlePercent)
		}
	}
	if !removed {
		t.Fatal("no throttle event of round 3 in the encoded trace")
	}
	m := decodeOne(t, tr)
	if want := []model.ThrottleStep{{Round: 1, Percent: 20}, {Round: 3}}; !reflect.DeepEqual(m.ThrottleSteps, want) {
		t.Errorf("throttle steps %+v, want %+v", m.ThrottleSteps, want)
	}
	at := func(round string) model.AttrRef {
		return model.EventAttr(schema.PhaseRamPushPrePause, schema.EventThrottle, round, schema.AttrThrottlePercent)
	}
	if m.Recorded(at("3")) || !m.Recorded(at("1")) {
		t.Errorf("unrecorded %v: want round 3's percentage only", m.Unrecorded)
	}
}
