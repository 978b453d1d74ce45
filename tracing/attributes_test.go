package tracing

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/tracing/schema"
)

// seedSource is the source's time data from the propolis PR #359 capture
// (shared/golden/README.md).
var seedSource = timedata.Data{
	GuestFreq:  2649958945,
	GuestTSC:   2330632597459,
	Hrtime:     18028032305249,
	Wallclock:  timedata.Wallclock{Sec: 1683850713, Nsec: 581965192},
	BootHrtime: 17148534696948,
}

// stageEventKeys is the documented attribute set of an
// EventTimeDataStage event, in the order StageEventAttributes emits it.
var stageEventKeys = []string{
	schema.AttrTimeStage, schema.AttrGuestFreq, schema.AttrGuestTSC, schema.AttrBootHrtime,
	schema.AttrHrtime, schema.AttrWallclock, schema.AttrStageDurationNs, schema.AttrGuestTSCDelta,
	schema.AttrBootHrtimeDelta, schema.AttrGuestUptimeNs, schema.AttrMigrateDeltaNs,
	schema.AttrMigrateDeltaNegative,
}

func TestStageEventAttributes(t *testing.T) {
	dst, adj, err := timedata.Adjust(seedSource, 18018796793122, timedata.Wallclock{Sec: 1683850713, Nsec: 582072774})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		stage      schema.Stage
		data       timedata.Data
		durationNs int64
		tscDelta   uint64
		bootDelta  int64
		vmmLatency int64
		wantKeys   []string
	}{
		{schema.StageMigration, seedSource, adj.MigrateDelta, 0, 0, 0, stageEventKeys},
		{schema.StageUserspace, dst, 22_000, adj.GuestTSCDelta, adj.BootHrtimeDelta, 0, stageEventKeys},
		{schema.StageKernel, timedata.Data{GuestFreq: dst.GuestFreq, GuestTSC: math.MaxUint64, Hrtime: dst.Hrtime,
			Wallclock: dst.Wallclock, BootHrtime: -5}, 18_000, 84400, 0, 31_850,
			append(slices.Clone(stageEventKeys), schema.AttrVMMLatencyNs)},
	}
	for _, tc := range tests {
		t.Run(tc.stage.String(), func(t *testing.T) {
			attrs := StageEventAttributes(tc.stage, tc.data, tc.durationNs, tc.tscDelta, tc.bootDelta, adj, tc.vmmLatency)
			var keys []string
			for _, kv := range attrs {
				keys = append(keys, string(kv.Key))
			}
			if !slices.Equal(keys, tc.wantKeys) {
				t.Fatalf("keys %v\nwant %v", keys, tc.wantKeys)
			}
			set := attribute.NewSet(attrs...)
			str := func(k string) string { v, _ := set.Value(attribute.Key(k)); return v.AsString() }
			i64 := func(k string) int64 { v, _ := set.Value(attribute.Key(k)); return v.AsInt64() }
			u64 := func(k string) uint64 {
				v, _ := set.Value(attribute.Key(k))
				if v.Type() != attribute.STRING {
					t.Fatalf("%s is %s, want a decimal string", k, v.Type())
				}
				n, err := ParseUint64(v.AsString())
				if err != nil {
					t.Fatalf("%s: %v", k, err)
				}
				return n
			}
			if str(schema.AttrTimeStage) != tc.stage.String() {
				t.Errorf("stage %q", str(schema.AttrTimeStage))
			}
			if u64(schema.AttrGuestFreq) != tc.data.GuestFreq || u64(schema.AttrGuestTSC) != tc.data.GuestTSC ||
				u64(schema.AttrGuestTSCDelta) != tc.tscDelta {
				t.Errorf("freq/tsc/delta %d/%d/%d, want %d/%d/%d", u64(schema.AttrGuestFreq), u64(schema.AttrGuestTSC),
					u64(schema.AttrGuestTSCDelta), tc.data.GuestFreq, tc.data.GuestTSC, tc.tscDelta)
			}
			if i64(schema.AttrBootHrtime) != tc.data.BootHrtime || i64(schema.AttrHrtime) != tc.data.Hrtime ||
				i64(schema.AttrStageDurationNs) != tc.durationNs || i64(schema.AttrBootHrtimeDelta) != tc.bootDelta {
				t.Errorf("int attributes wrong: %v", attrs)
			}
			w, err := timedata.ParseWallclock(str(schema.AttrWallclock))
			if err != nil || w != tc.data.Wallclock {
				t.Errorf("wallclock %q parses to %v, %v; want %v", str(schema.AttrWallclock), w, err, tc.data.Wallclock)
			}
			if i64(schema.AttrGuestUptimeNs) != adj.GuestUptime || i64(schema.AttrMigrateDeltaNs) != adj.MigrateDelta {
				t.Errorf("adjustment attributes wrong: %v", attrs)
			}
			if v, _ := set.Value(schema.AttrMigrateDeltaNegative); v.Type() != attribute.BOOL || v.AsBool() != adj.MigrateDeltaNegative {
				t.Errorf("negative flag %v", v.Emit())
			}
			if tc.stage == schema.StageKernel && i64(schema.AttrVMMLatencyNs) != tc.vmmLatency {
				t.Errorf("vmm latency %d, want %d", i64(schema.AttrVMMLatencyNs), tc.vmmLatency)
			}
		})
	}
}

func TestUint64IsLossless(t *testing.T) {
	for _, v := range []uint64{0, 1, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
		kv := Uint64(schema.AttrGuestTSC, v)
		got, err := ParseUint64(kv.Value.AsString())
		if err != nil || got != v {
			t.Errorf("%d -> %q -> %d, %v", v, kv.Value.AsString(), got, err)
		}
	}
	if _, err := ParseUint64("-1"); err == nil {
		t.Error("ParseUint64 accepted -1")
	}
}

func TestEventHelpers(t *testing.T) {
	got := attribute.NewSet(ClockOffsetAttributes(-3*time.Millisecond, 250*time.Microsecond, 500*time.Microsecond, 8, true)...)
	want := attribute.NewSet(
		attribute.Int64(schema.AttrClockOffsetNs, -3_000_000), attribute.Int64(schema.AttrClockOffsetErrorNs, 250_000),
		attribute.Int64(schema.AttrClockRTTNs, 500_000), attribute.Int64(schema.AttrClockSamples, 8),
		attribute.Bool(schema.AttrClockSkewCorrected, true))
	if !got.Equals(&want) {
		t.Errorf("ClockOffsetAttributes = %v", got.Encoded(attribute.DefaultEncoder()))
	}
	got = attribute.NewSet(BlackoutAttributes(45*time.Millisecond, time.Millisecond)...)
	want = attribute.NewSet(attribute.Int64(schema.AttrBlackoutNs, 45_000_000), attribute.Int64(schema.AttrBlackoutErrorNs, 1_000_000))
	if !got.Equals(&want) {
		t.Errorf("BlackoutAttributes = %v", got.Encoded(attribute.DefaultEncoder()))
	}
	got = attribute.NewSet(PrecopyRound{Round: 2, Pages: 10, ZeroPages: 3, Bytes: 28672, WireBytes: 30000,
		DirtyPages: 4, Duration: time.Millisecond}.Attributes()...)
	want = attribute.NewSet(attribute.Int64(schema.AttrRAMRound, 2), attribute.Int64(schema.AttrRAMPages, 10),
		attribute.Int64(schema.AttrRAMZeroPages, 3), attribute.Int64(schema.AttrRAMBytes, 28672),
		attribute.Int64(schema.AttrRAMWireBytes, 30000), attribute.Int64(schema.AttrRAMDirtyPages, 4),
		attribute.Int64(schema.AttrRAMRoundNs, 1_000_000))
	if !got.Equals(&want) {
		t.Errorf("PrecopyRound.Attributes = %v", got.Encoded(attribute.DefaultEncoder()))
	}
	got = attribute.NewSet(append(PhaseSpanAttributes("id-1", schema.RoleDestination, schema.PhaseRamPull, 10), PhaseEnd(20))...)
	want = attribute.NewSet(attribute.String(schema.AttrMigrationID, "id-1"), attribute.String(schema.AttrRole, "destination"),
		attribute.String(schema.AttrPhase, "RamPull"), attribute.Int64(schema.AttrPhaseBeginNs, 10),
		attribute.Int64(schema.AttrPhaseEndNs, 20))
	if !got.Equals(&want) {
		t.Errorf("phase span attributes = %v", got.Encoded(attribute.DefaultEncoder()))
	}
}

func TestInjectExtractJoinsTrace(t *testing.T) {
	source := sdktrace.NewTracerProvider()
	dest := sdktrace.NewTracerProvider()
	ctx, root := source.Tracer(schema.ScopeName).Start(context.Background(), schema.SpanMigration)
	defer root.End()
	tp, ts := Inject(ctx)
	if tp == "" {
		t.Fatal("Inject produced no traceparent")
	}
	if ts != "" {
		t.Errorf("tracestate %q, want empty", ts)
	}

	remote := Extract(context.Background(), tp, "vendor=x")
	_, child := dest.Tracer(schema.ScopeName).Start(remote, schema.SpanMigration)
	defer child.End()
	ro := child.(sdktrace.ReadOnlySpan)
	if ro.SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Errorf("destination trace %s, want %s", ro.SpanContext().TraceID(), root.SpanContext().TraceID())
	}
	if ro.Parent().SpanID() != root.SpanContext().SpanID() || !ro.Parent().IsRemote() {
		t.Errorf("parent %v, want remote %s", ro.Parent(), root.SpanContext().SpanID())
	}
	if ro.SpanContext().TraceState().Get("vendor") != "x" {
		t.Errorf("tracestate %q not carried", ro.SpanContext().TraceState())
	}

	for _, bad := range []string{"", "garbage", "00-00000000000000000000000000000000-0000000000000000-01"} {
		if sc := trace.SpanContextFromContext(Extract(context.Background(), bad, "")); sc.IsValid() {
			t.Errorf("Extract(%q) gave a valid context %v", bad, sc)
		}
	}
}
