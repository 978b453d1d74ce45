package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
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
	// ctl steers the migration (cancel, settings in flight); stop cancels
	// ctx, which ctl does for a cancel.
	ctl  *Control
	stop context.CancelCauseFunc
	// cancelBy is who cancelled the migration, once a phase failed for it.
	cancelBy string
}

// live returns the settings this side acts on now, which an operator may
// change while the migration runs: read them at each decision, not once.
func (s *side) live() model.Settings { return s.ctl.live() }

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
	s.ctl.setPhase(p)
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
	if cause := context.Cause(s.ctx); err == nil && errors.Is(cause, ErrCancelled) {
		// Cancelled during a phase that did no I/O to notice it (Pause):
		// it happened here, not in the next phase.
		err = cause
	}
	rec.EndNs = s.now()
	rec.End = time.Now()
	probes.PhaseEnd(s.role, p, rec.EndNs, err != nil)
	if err != nil {
		if by, ok := s.cancellation(err); ok {
			// Whatever the phase tripped over (a cancelled context, a
			// stream the peer closed), the cause is the cancel.
			s.cancelBy = by
			err = &Error{Role: s.role, Phase: p, Err: &CancelledError{By: by}}
		}
		rec.Failed, rec.Error = true, err.Error()
		span.SetStatus(codes.Error, err.Error())
	}
	span.SetAttributes(spancodec.PhaseEndAttributes(rec)...)
	span.End(trace.WithTimestamp(rec.End))
	if m := s.cfg.Metrics; m != nil {
		if pc, ok := m.(phaseCanceller); ok && s.cancelBy != "" {
			pc.PhaseCancelled(ctx, s.role, p, rec.Duration())
		} else {
			m.PhaseDone(ctx, s.role, p, rec.Duration(), err != nil)
		}
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

// phaseCanceller is implemented by Metrics (tracing.Instruments) that
// count a phase cut short by a cancel apart from failed phases.
type phaseCanceller interface {
	PhaseCancelled(ctx context.Context, r schema.Role, p schema.Phase, d time.Duration)
}

// peerAskTimeout bounds asking the peer's server whether it cancelled.
const peerAskTimeout = time.Second

// cancellation says whether a phase failed with err because the
// migration was cancelled, and who asked: here, or at the peer, whose
// cancel may have arrived only as a broken stream or its Error message,
// so its server is asked.
func (s *side) cancellation(err error) (string, bool) {
	if by, ok := s.ctl.CancelledBy(); ok {
		if s.role == schema.RoleDestination {
			// Cancels asked of both servers at once name the one the
			// source took first: the source's record stands.
			if peerBy := s.askPeerCancelled(); peerBy != "" && peerBy != by {
				s.ctl.AdoptCancelledBy(peerBy)
				by = peerBy
			}
		}
		return by, true
	}
	var ce *CancelledError
	if errors.As(err, &ce) {
		return ce.By, true
	}
	if !fromPeer(err) {
		return "", false
	}
	by := s.askPeerCancelled()
	if by == "" {
		return "", false
	}
	s.cfg.Logger.Info("the peer cancelled the migration", "by", by, "err", err)
	return by, true
}

// askPeerCancelled asks the peer's server who cancelled the migration
// there: "" for no one, or when it cannot be asked.
func (s *side) askPeerCancelled() string {
	addr := s.cfg.PeerAPI
	if s.cfg.AskPeerCancelled == nil || addr == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), peerAskTimeout)
	defer cancel()
	by, err := s.cfg.AskPeerCancelled(ctx, addr, s.id)
	if err != nil {
		return ""
	}
	return by
}

// fromPeer reports whether err is how a peer's cancel reaches this side:
// its Error message, or the stream ending under a read or write. A
// failure of this side's own (a check, the VM, a timeout) is not.
func fromPeer(err error) bool {
	var remote *wire.RemoteError
	return errors.As(err, &remote) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, wire.ErrMalformed)
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
	switch {
	case err != nil && s.cancelBy != "":
		// A cancellation, not a failure: the span's status stays unset.
		r.Result, r.Error, r.CancelledBy = schema.ResultCancelled, err.Error(), s.cancelBy
		if p, ok := FailedPhase(err); ok {
			r.ErrorPhase = p.String()
		}
	case err != nil:
		r.Result, r.Error = schema.ResultFailure, err.Error()
		if p, ok := FailedPhase(err); ok {
			r.ErrorPhase = p.String()
		}
		s.span.SetStatus(codes.Error, err.Error())
	}
	s.ctl.finish()
	st := s.ctl.recorded()
	r.Settings, r.SettingsChanges = &st, s.ctl.Changes()
	s.span.SetAttributes(spancodec.RootEndAttributes(r)...)
	s.span.End(trace.WithTimestamp(r.EndTime))
	s.stop(nil)
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
	s.ctl = s.cfg.Control
	r := s.result
	r.ID, r.Role, r.Instance = s.id.String(), s.role, s.cfg.Name
	r.StartTime = time.Now()
	if s.role == schema.RoleSource {
		// A destination learns them from its source in Sync; its root
		// span records them as it ends.
		st := s.cfg.Settings()
		r.Settings = &st
	}
	ctx, s.stop = context.WithCancelCause(ctx)
	s.ctx, s.span = s.cfg.Tracer.Start(ctx, schema.SpanMigration, trace.WithTimestamp(r.StartTime),
		trace.WithAttributes(spancodec.RootStartAttributes(r)...))
	s.ctl.bind(s, s.stop)
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
