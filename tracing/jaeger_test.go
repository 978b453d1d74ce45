package tracing

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
	"github.com/migtrace/migtrace/tracing/tracingtest"
)

// emitMigrationTrace records what a migration records, through the same
// helpers the protocol uses: a source and a destination side sharing one
// trace via Inject/Extract, a span per phase, pre-copy round events, the
// clock-offset event, the three time-data stage events and the blackout.
func emitMigrationTrace(t *testing.T, source, dest trace.Tracer) trace.TraceID {
	t.Helper()
	const id = "5d1c7a52-8a0e-4d6f-9a43-1f6f3e2b7c10"
	base := time.Now().Add(-time.Second)
	mono := int64(18_000_000_000_000)
	at := func(offset time.Duration) trace.SpanStartEventOption { return trace.WithTimestamp(base.Add(offset)) }

	srcCtx, srcRoot := source.Start(context.Background(), schema.SpanMigration, at(0), trace.WithAttributes(
		attribute.String(schema.AttrMigrationID, id), attribute.String(schema.AttrRole, schema.RoleSource.String()),
		attribute.String(schema.AttrInstance, "vm-a"), attribute.String(schema.AttrBackend, "sim")))
	traceparent, tracestate := Inject(srcCtx)
	dstCtx, dstRoot := dest.Start(Extract(context.Background(), traceparent, tracestate), schema.SpanMigration, at(time.Millisecond),
		trace.WithAttributes(attribute.String(schema.AttrMigrationID, id), attribute.String(schema.AttrRole, schema.RoleDestination.String())))

	// The seed migration's stages (propolis PR #359).
	common := model.StageValues{Present: true, GuestFreq: 2649958945, GuestUptimeNs: 879497608301, MigrateDeltaNs: 107582}
	migration, userspace, kernel := common, common, model.StageValues{}
	migration.GuestTSC, migration.BootHrtime, migration.Hrtime = 2330632597459, 17148534696948, 18028032305249
	migration.Wallclock, migration.DurationNs = "1683850713.581965192", 107582
	userspace.GuestTSC, userspace.BootHrtime, userspace.Hrtime = 2330632882546, 17139299077239, 18018796793122
	userspace.Wallclock, userspace.DurationNs = "1683850713.582072774", 22_000
	userspace.GuestTSCDelta, userspace.BootHrtimeDelta = 285087, -9235619709
	kernel = userspace
	blackoutErr := int64(40_000)
	kernel.GuestTSC, kernel.GuestTSCDelta, kernel.BootHrtimeDelta = userspace.GuestTSC+84400, 84400, 0
	kernel.DurationNs, kernel.VMMLatencyNs = 18_000, 31_850

	for side, ctx := range map[schema.Role]context.Context{schema.RoleSource: srcCtx, schema.RoleDestination: dstCtx} {
		tr := source
		if side == schema.RoleDestination {
			tr = dest
		}
		for i, p := range schema.Phases {
			if !p.Runs(side) {
				continue
			}
			begin := mono + int64(i)*1_000_000
			_, span := tr.Start(ctx, schema.PhaseSpanName(p), at(time.Duration(i+2)*time.Millisecond),
				trace.WithAttributes(spancodec.PhaseStartAttributes(id, side, p, begin)...))
			switch {
			case p == schema.PhaseRamPushPrePause && side == schema.RoleSource:
				for r := range 3 {
					span.AddEvent(schema.EventPrecopyRound, at(time.Duration(i+2)*time.Millisecond+time.Duration(r)*time.Microsecond),
						trace.WithAttributes(spancodec.RoundAttributes(model.PrecopyRound{Round: int64(r), Pages: 100 >> r, Bytes: 4096 * (100 >> r),
							WireBytes: 4200 * (100 >> r), DirtyPages: 50 >> r, RoundNs: 300_000})...))
				}
			case p == schema.PhaseSync && side == schema.RoleDestination:
				span.AddEvent(schema.EventClockOffset, at(time.Duration(i+2)*time.Millisecond),
					trace.WithAttributes(spancodec.ClockOffsetAttributes(model.ClockOffset{OffsetNs: -120_000, ErrorNs: 40_000, RTTNs: 80_000, Samples: 8})...))
			case p == schema.PhaseTimeData && side == schema.RoleDestination:
				stageAt := at(time.Duration(i+2) * time.Millisecond)
				span.AddEvent(schema.EventTimeDataStage, stageAt, trace.WithAttributes(
					spancodec.StageAttributes(schema.StageMigration, migration)...))
				span.AddEvent(schema.EventTimeDataStage, stageAt, trace.WithAttributes(
					spancodec.StageAttributes(schema.StageUserspace, userspace)...))
				span.AddEvent(schema.EventTimeDataStage, stageAt, trace.WithAttributes(
					spancodec.StageAttributes(schema.StageKernel, kernel)...))
			case p == schema.PhaseFinish && side == schema.RoleDestination:
				span.AddEvent(schema.EventBlackout, at(time.Duration(i+2)*time.Millisecond),
					trace.WithAttributes(spancodec.BlackoutAttributes(model.Blackout{Ns: 45_000_000, ErrorNs: &blackoutErr})...))
			case p == schema.PhaseDeviceState && side == schema.RoleSource:
				span.SetStatus(codes.Error, "device state rejected")
				span.SetAttributes(attribute.String(schema.AttrError, "device state rejected"))
			}
			span.SetAttributes(spancodec.PhaseEndAttributes(model.PhaseTiming{Phase: p, EndNs: begin + 900_000})...)
			span.End(trace.WithTimestamp(base.Add(time.Duration(i+3) * time.Millisecond)))
		}
	}
	dstRoot.SetAttributes(attribute.String(schema.AttrResult, schema.ResultSuccess))
	dstRoot.End(trace.WithTimestamp(base.Add(20 * time.Millisecond)))
	srcRoot.SetAttributes(attribute.String(schema.AttrResult, schema.ResultSuccess))
	srcRoot.End(trace.WithTimestamp(base.Add(21 * time.Millisecond)))
	return srcRoot.SpanContext().TraceID()
}

// TestJaegerReceivesMigrationTrace exports a migration-shaped trace through
// Setup's OTEL_* path to a real Jaeger and checks that every span, event
// and attribute comes back from its API v3 as the SDK recorded it.
func TestJaegerReceivesMigrationTrace(t *testing.T) {
	otlpEndpoint, queryURL := tracingtest.StartJaeger(t)
	clearOTelEnv(t)
	t.Setenv(EnvOTLPEndpoint, otlpEndpoint)

	setup := func(service string, rec *tracetest.SpanRecorder) *Telemetry {
		tel, err := Setup(context.Background(), Config{
			ServiceName:    service,
			Attributes:     []attribute.KeyValue{attribute.String(schema.AttrInstance, service)},
			Env:            true,
			SpanProcessors: []sdktrace.SpanProcessor{rec},
		})
		if err != nil {
			t.Fatal(err)
		}
		return tel
	}
	// Two Telemetry values, as two migtrace processes would have.
	srcRec, dstRec := tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
	srcTel, dstTel := setup("migtrace-source", srcRec), setup("migtrace-destination", dstRec)
	traceID := emitMigrationTrace(t, srcTel.Tracer(), dstTel.Tracer())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tel := range []*Telemetry{srcTel, dstTel} {
		if err := tel.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}

	want := append(srcRec.Ended(), dstRec.Ended()...)
	wantPhases := 0
	for _, r := range []schema.Role{schema.RoleSource, schema.RoleDestination} {
		for _, p := range schema.Phases {
			if p.Runs(r) {
				wantPhases++
			}
		}
	}
	if len(want) != wantPhases+2 {
		t.Fatalf("SDK recorded %d spans, want %d", len(want), wantPhases+2)
	}

	td := tracingtest.FetchTrace(t, queryURL, traceID, len(want), 30*time.Second)
	got := map[trace.SpanID]exportedSpan{}
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				got[trace.SpanID(s.SpanID())] = exportedSpan{rs.Resource(), ss.Scope(), s}
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("jaeger returned %d spans, want %d", len(got), len(want))
	}
	stageEvents := 0
	for _, w := range want {
		g, ok := got[w.SpanContext().SpanID()]
		if !ok {
			t.Errorf("span %s %q missing from jaeger", w.SpanContext().SpanID(), w.Name())
			continue
		}
		compareJaegerSpan(t, w, g)
		for _, ev := range w.Events() {
			if ev.Name == schema.EventTimeDataStage {
				stageEvents++
			}
		}
	}
	t.Logf("jaeger returned %d spans with %d events; %d time-data stage events checked", len(got), countEvents(td), stageEvents)
	if stageEvents != len(schema.Stages) {
		t.Errorf("%d time-data stage events, want %d", stageEvents, len(schema.Stages))
	}
}

// compareJaegerSpan checks what a trace store must keep: identity and
// parentage, name, kind, times, status, every attribute (typed) and every
// event with its timestamp and attributes, and the resource attributes we
// set. Jaeger may add attributes of its own; ours must all be there.
func compareJaegerSpan(t *testing.T, want sdktrace.ReadOnlySpan, g exportedSpan) {
	t.Helper()
	name := want.Name()
	s := g.span
	if s.Name() != name || trace.TraceID(s.TraceID()) != want.SpanContext().TraceID() {
		t.Errorf("span %s: got %q in trace %s", name, s.Name(), s.TraceID())
	}
	if want.Parent().IsValid() && trace.SpanID(s.ParentSpanID()) != want.Parent().SpanID() {
		t.Errorf("%s: parent %s, want %s", name, s.ParentSpanID(), want.Parent().SpanID())
	}
	if s.Kind() != spanKind(want.SpanKind()) {
		t.Errorf("%s: kind %v, want %v", name, s.Kind(), want.SpanKind())
	}
	if !s.StartTimestamp().AsTime().Equal(want.StartTime()) || !s.EndTimestamp().AsTime().Equal(want.EndTime()) {
		t.Errorf("%s: times %v..%v, want %v..%v", name, s.StartTimestamp().AsTime(), s.EndTimestamp().AsTime(),
			want.StartTime(), want.EndTime())
	}
	if s.Status().Code() != statusCode(want.Status().Code) || s.Status().Message() != want.Status().Description {
		t.Errorf("%s: status %v %q, want %v %q", name, s.Status().Code(), s.Status().Message(),
			want.Status().Code, want.Status().Description)
	}
	containsAttrs(t, name, want.Attributes(), s.Attributes())
	containsAttrs(t, name+" resource", want.Resource().Attributes(), g.resource.Attributes())
	if s.Events().Len() != len(want.Events()) {
		t.Fatalf("%s: %d events, want %d", name, s.Events().Len(), len(want.Events()))
	}
	for i, we := range want.Events() {
		ge := s.Events().At(i)
		if ge.Name() != we.Name || !ge.Timestamp().AsTime().Equal(we.Time) {
			t.Errorf("%s: event %d = %q at %v, want %q at %v", name, i, ge.Name(), ge.Timestamp().AsTime(), we.Name, we.Time)
		}
		containsAttrs(t, name+" event "+we.Name, we.Attributes, ge.Attributes())
	}
}

func containsAttrs(t *testing.T, what string, want []attribute.KeyValue, got pcommon.Map) {
	t.Helper()
	for _, kv := range want {
		v, ok := got.Get(string(kv.Key))
		if !ok {
			t.Errorf("%s: attribute %s missing", what, kv.Key)
			continue
		}
		if !valueEqual(kv.Value, v) {
			t.Errorf("%s: attribute %s = %s (%s), want %s (%s)", what, kv.Key, v.AsString(), v.Type(),
				kv.Value.Emit(), kv.Value.Type())
		}
	}
}

func countEvents(td ptrace.Traces) int {
	n := 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				n += s.Events().Len()
			}
		}
	}
	return n
}
