package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// side is the bookkeeping one end of a migration shares between phases:
// its span, clock, connection and the record it is building.
type side struct {
	cfg    Config
	role   schema.Role
	clock  vmm.Clock
	conn   *wire.Conn
	ctx    context.Context // carries the migration span
	span   trace.Span
	id     ID
	result *model.Side
	phase  schema.Phase // the phase running now, for progress and errors
}

func (s *side) now() int64 {
	h, _ := s.clock.Now()
	return h
}

// phaseFunc runs one phase, filling in the record's transfer counts.
type phaseFunc func(ctx context.Context, rec *model.PhaseTiming) error

// runPhases runs each phase this side runs, in protocol order (the order
// of schema.Phases), stopping at the first failure.
func (s *side) runPhases(steps map[schema.Phase]phaseFunc) error {
	for _, p := range schema.Phases {
		if !p.Runs(s.role) {
			continue
		}
		fn, ok := steps[p]
		if !ok {
			return &Error{Role: s.role, Phase: p, Err: fmt.Errorf("the %s side has no step for phase %s", s.role, p)}
		}
		if err := s.run(p, fn); err != nil {
			return err
		}
	}
	return nil
}

// run times one phase: a span, the probe pair, a duration metric and a
// model.PhaseTiming. fn fills in the record's transfer counts. A failure
// is wrapped in an *Error naming the phase.
func (s *side) run(p schema.Phase, fn phaseFunc) error {
	s.phase = p
	s.progress(Progress{Phase: p})
	begin := s.now()
	probes.PhaseBegin(s.role, p, begin)
	// The span's wall times are taken here, not by the SDK, so the record
	// holds them too: they place the phase inside the root span, whose
	// times come from the same clock.
	rec := model.PhaseTiming{Phase: p, BeginNs: begin, Start: time.Now(), Paused: p == schema.PhaseRamPushPostPause}
	ctx, span := s.cfg.Tracer.Start(s.ctx, schema.PhaseSpanName(p), trace.WithTimestamp(rec.Start), trace.WithAttributes(
		spancodec.PhaseStartAttributes(s.result.ID, s.role, p, begin)...))
	err := fn(ctx, &rec)
	rec.EndNs = s.now()
	rec.End = time.Now()
	probes.PhaseEnd(s.role, p, rec.EndNs, err != nil)
	if err != nil {
		rec.Failed, rec.Error = true, err.Error()
		span.SetStatus(codes.Error, err.Error())
	}
	span.SetAttributes(spancodec.PhaseEndAttributes(rec)...)
	span.End(trace.WithTimestamp(rec.End))
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.PhaseDone(ctx, s.role, p, rec.Duration(), err != nil)
	}
	s.result.Phases = append(s.result.Phases, rec)
	if err != nil {
		var me *Error
		if errors.As(err, &me) {
			return err
		}
		return &Error{Role: s.role, Phase: p, Err: err}
	}
	return nil
}

func (s *side) progress(p Progress) {
	if s.cfg.Progress == nil {
		return
	}
	p.ID, p.Role = s.id, s.role
	if p.Phase == 0 {
		p.Phase = s.phase
	}
	if s.conn != nil && p.Bytes == 0 {
		p.Bytes = s.conn.BytesSent() + s.conn.BytesReceived()
	}
	s.cfg.Progress(p)
}

// finish records the outcome in the side's model, closes the migration
// span with it and records the outcome metric.
func (s *side) finish(err error) {
	r := s.result
	r.EndTime = time.Now()
	if s.conn != nil {
		r.BytesSent, r.BytesReceived = int64(s.conn.BytesSent()), int64(s.conn.BytesReceived())
	}
	if st, _ := s.cfg.Handoff.State(); st != HandoffNone {
		r.Handoff = string(st)
	}
	r.Result = schema.ResultSuccess
	if err != nil {
		r.Result, r.Error = schema.ResultFailure, err.Error()
		if p, ok := FailedPhase(err); ok {
			r.ErrorPhase = p.String()
		}
		s.span.SetStatus(codes.Error, err.Error())
	}
	s.span.SetAttributes(spancodec.RootEndAttributes(r)...)
	s.span.End(trace.WithTimestamp(r.EndTime))
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.MigrationDone(s.ctx, s.role, r.Result)
	}
	hi, lo := s.id.Halves()
	probes.MigrationEnd(s.role, hi, lo, err != nil)
}

// start fills in the side's identity, opens the migration span and fires
// the begin probe.
func (s *side) start(ctx context.Context) {
	s.cfg = s.cfg.withDefaults()
	r := s.result
	r.ID, r.Role, r.Instance = s.id.String(), s.role, s.cfg.Name
	r.StartTime = time.Now()
	s.ctx, s.span = s.cfg.Tracer.Start(ctx, schema.SpanMigration, trace.WithTimestamp(r.StartTime),
		trace.WithAttributes(spancodec.RootStartAttributes(r)...))
	if sc := s.span.SpanContext(); sc.IsValid() {
		r.TraceID = sc.TraceID().String()
	}
	hi, lo := s.id.Halves()
	probes.MigrationBegin(s.role, hi, lo)
}

// metricThrottle sets the throttle gauge, when there are metrics.
func (s *side) metricThrottle(ctx context.Context, percent int) {
	if m := s.cfg.Metrics; m != nil {
		m.Throttle(ctx, s.role, percent)
	}
}
