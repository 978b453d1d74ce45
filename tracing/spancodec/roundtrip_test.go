package spancodec_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// roundTrip encodes sides, marshals them as OTLP JSON, unmarshals and
// decodes them again.
func roundTrip(t testing.TB, sides ...model.Side) []model.Side {
	t.Helper()
	var buf bytes.Buffer
	if err := reporttest.WriteJSONL(&buf, spancodec.Traces(spancodec.Options{}, sides...)); err != nil {
		t.Fatal(err)
	}
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(bytes.TrimSpace(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	dec := spancodec.NewDecoder()
	if err := dec.AddTraces(td); err != nil {
		t.Fatal(err)
	}
	return dec.Sides()
}

func utc(ms []model.Side) []model.Side {
	out := make([]model.Side, len(ms))
	for i, m := range ms {
		m.StartTime, m.EndTime = m.StartTime.UTC(), m.EndTime.UTC()
		if m.TraceID == "" {
			m.TraceID = spancodec.TraceID(&m).String()
		}
		out[i] = m
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	cases := map[string][]model.Side{
		"seed":  {reporttest.SeedSource(), reporttest.SeedDestination()},
		"fleet": reporttest.Fleet(20, 7),
	}
	failed := reporttest.SeedDestination()
	failed.Result, failed.Error, failed.ErrorPhase = "failure", "importing time data: boom", "TimeData"
	failed.Phases = failed.Phases[:4]
	failed.Phases[3].Failed, failed.Phases[3].Error = true, "boom"
	failed.Blackout, failed.Continuity = nil, nil
	cases["failure"] = []model.Side{failed}
	// A source cancelled mid-push after an operator raised its bandwidth
	// and lowered its round limit.
	cancelled := reporttest.SeedSource()
	cancelled.Result, cancelled.ErrorPhase = "cancelled", "RamPushPrePause"
	cancelled.Error, cancelled.CancelledBy = "cancelled by an operator", "dst (127.0.0.1:7002) for 127.0.0.1:40000"
	cancelled.Phases, cancelled.TimeRead, cancelled.DowntimeNs = cancelled.Phases[:2], nil, 0
	cancelled.Phases[1].Failed, cancelled.Phases[1].Error = true, "cancelled by an operator"
	cancelled.Settings = &model.Settings{MaxBandwidth: 8 << 20, DowntimeTargetNs: 30e6, MaxRounds: 12, SkipMemoryChecksum: true}
	at := cancelled.StartTime.Add(time.Second).UTC()
	cancelled.SettingsChanges = []model.SettingChange{
		{Time: at, Setting: "max_bandwidth", Old: 8 << 20, New: 64 << 20, Phase: schema.PhaseRamPushPrePause, By: "cli"},
		{Time: at.Add(time.Millisecond), Setting: "max_rounds", Old: 12, New: 3},
	}
	cases["cancelled with settings changed"] = []model.Side{cancelled}
	noClock := reporttest.SeedDestination()
	noClock.ClockOffset = &model.ClockOffset{}
	noClock.Blackout.ErrorNs = nil
	cases["no clock estimate"] = []model.Side{noClock}
	throttled := reporttest.SeedSource()
	throttled.ThrottleSteps = []model.ThrottleStep{{Round: 1, Percent: 20}, {Round: 3, Percent: 30}}
	cases["auto-converge"] = []model.Side{throttled}
	// Each memory verification: the mode and sample on the continuity
	// event, the late comparison's verdict on the root span.
	for _, v := range []struct {
		name   string
		mode   string
		sample int64
		late   *model.MemoryLate
	}{
		{"verify full", schema.MemoryVerifyFull, 0, nil},
		{"verify sampled", schema.MemoryVerifySampled, 1024, &model.MemoryLate{Result: schema.MemoryLateMatch, DurationNs: 31_000_000}},
		{"verify after, mismatch", schema.MemoryVerifyAfter, 0, &model.MemoryLate{Result: schema.MemoryLateMismatch, DurationNs: 29_500_000}},
		{"verify after, unavailable", schema.MemoryVerifyAfter, 0, &model.MemoryLate{Result: schema.MemoryLateUnavailable, DurationNs: 5, Error: "peer closed the connection"}},
		{"verify off", schema.MemoryVerifyOff, 0, nil},
	} {
		m := reporttest.SeedDestination()
		c := *m.Continuity
		c.MemoryVerify, c.MemorySamplePages = v.mode, v.sample
		if v.mode == schema.MemoryVerifyAfter || v.mode == schema.MemoryVerifyOff {
			c.MemoryUnchecked, c.MemoryChecksumOK = true, false
		}
		m.Continuity, m.MemoryLate = &c, v.late
		cases[v.name] = []model.Side{m}
	}

	for name, sides := range cases {
		t.Run(name, func(t *testing.T) {
			want := utc(sides)
			model.SortByStart(want)
			got := roundTrip(t, sides...)
			if !reflect.DeepEqual(got, want) {
				gj, _ := json.MarshalIndent(got, "", " ")
				wj, _ := json.MarshalIndent(want, "", " ")
				t.Fatalf("decoded:\n%s\nencoded:\n%s", gj, wj)
			}
		})
	}
}

// The codec's decoder never panics, and what it decodes from any valid
// OTLP JSON encodes and decodes to itself: no side is read one way and
// written another.
func FuzzDecode(f *testing.F) {
	for _, sides := range [][]model.Side{
		{reporttest.SeedSource(), reporttest.SeedDestination()},
		reporttest.Fleet(2, 3),
	} {
		var buf bytes.Buffer
		if err := reporttest.WriteJSONL(&buf, spancodec.Traces(spancodec.Options{}, sides...)); err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.TrimSpace(buf.Bytes()))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(data)
		if err != nil {
			return
		}
		dec := spancodec.NewDecoder()
		if err := dec.AddTraces(td); err != nil {
			return
		}
		var complete []model.Side
		for _, s := range dec.Sides() {
			// Only sides the input described in full can be written back
			// as they were read: one rebuilt from its peer's report, or
			// without its root span, is read from other spans than the
			// ones it would be written as; spans set aside as conflicts,
			// or of another trace, are evidence about the input that
			// writing the side does not reproduce.
			if !s.ReportedByPeer && s.Result != "" && len(s.Conflicts) == 0 && len(s.ForeignSpans) == 0 {
				complete = append(complete, s)
			}
		}
		if len(complete) == 0 {
			return
		}
		once := roundTrip(t, complete...)
		twice := roundTrip(t, once...)
		if !reflect.DeepEqual(once, twice) {
			t.Fatalf("decode(encode(x)) is not stable:\n%+v\n%+v", once, twice)
		}
	})
}
