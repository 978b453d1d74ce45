package migrate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/schema"
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
	result *Result
	phase  schema.Phase // the phase running now, for progress and errors
}

func (s *side) now() int64 {
	h, _ := s.clock.Now()
	return h
}

// phaseFunc runs one phase, filling in the record's transfer counts.
type phaseFunc func(ctx context.Context, rec *PhaseRecord) error

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
// PhaseRecord. fn fills in the record's transfer counts. A failure is
// wrapped in an *Error naming the phase.
func (s *side) run(p schema.Phase, fn phaseFunc) error {
	s.phase = p
	s.progress(Progress{Phase: p})
	begin := s.now()
	probes.PhaseBegin(s.role, p, begin)
	ctx, span := s.cfg.Tracer.Start(s.ctx, schema.PhaseSpanName(p), trace.WithAttributes(
		tracing.PhaseSpanAttributes(s.result.ID.String(), s.role, p, begin)...))
	rec := PhaseRecord{Phase: p, BeginNs: begin}
	err := fn(ctx, &rec)
	rec.EndNs = s.now()
	rec.Failed = err != nil
	probes.PhaseEnd(s.role, p, rec.EndNs, err != nil)

	attrs := []attribute.KeyValue{tracing.PhaseEnd(rec.EndNs)}
	if isRAMPhase(p) {
		attrs = append(attrs,
			attribute.Int64(schema.AttrRAMBytes, int64(rec.Bytes)),
			attribute.Int64(schema.AttrRAMPages, int64(rec.Pages)),
			attribute.Int64(schema.AttrRAMZeroPages, int64(rec.ZeroPages)),
			attribute.Int64(schema.AttrRAMRounds, int64(rec.Rounds)),
			attribute.Bool(schema.AttrRAMPaused, p == schema.PhaseRamPushPostPause),
		)
	}
	span.SetAttributes(attrs...)
	if err != nil {
		span.SetAttributes(attribute.String(schema.AttrError, err.Error()))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
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

func isRAMPhase(p schema.Phase) bool {
	return p == schema.PhaseRamPushPrePause || p == schema.PhaseRamPushPostPause || p == schema.PhaseRamPull
}

func (s *side) progress(p Progress) {
	if s.cfg.Progress == nil {
		return
	}
	p.ID, p.Role = s.result.ID, s.role
	if p.Phase == 0 {
		p.Phase = s.phase
	}
	if s.conn != nil && p.Bytes == 0 {
		p.Bytes = s.conn.BytesSent() + s.conn.BytesReceived()
	}
	s.cfg.Progress(p)
}

// finish closes the migration span and records the outcome metric.
func (s *side) finish(err error) {
	s.result.End = time.Now()
	s.result.Err = err
	if s.conn != nil {
		s.result.BytesSent, s.result.BytesReceived = s.conn.BytesSent(), s.conn.BytesReceived()
	}
	result := schema.ResultSuccess
	if err != nil {
		result = schema.ResultFailure
		attrs := []attribute.KeyValue{attribute.String(schema.AttrError, err.Error())}
		if p, ok := FailedPhase(err); ok {
			attrs = append(attrs, attribute.String(schema.AttrErrorPhase, p.String()))
		}
		s.span.SetAttributes(attrs...)
		s.span.SetStatus(codes.Error, err.Error())
	}
	s.span.SetAttributes(attribute.String(schema.AttrResult, result))
	s.span.End()
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.MigrationDone(s.ctx, s.role, result)
	}
	hi, lo := s.result.ID.Halves()
	probes.MigrationEnd(s.role, hi, lo, err != nil)
}

// start opens the migration span and fires the begin probe.
func (s *side) start(ctx context.Context, name string, attrs ...attribute.KeyValue) {
	s.cfg = s.cfg.withDefaults()
	s.result.Start = time.Now()
	attrs = append(attrs,
		attribute.String(schema.AttrMigrationID, s.result.ID.String()),
		attribute.String(schema.AttrRole, s.role.String()),
		attribute.String(schema.AttrInstance, s.cfg.Name),
	)
	s.ctx, s.span = s.cfg.Tracer.Start(ctx, name, trace.WithAttributes(attrs...))
	hi, lo := s.result.ID.Halves()
	probes.MigrationBegin(s.role, hi, lo)
}
