package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Dialer opens the migration stream to the source. ctx carries the
// destination's migration span, so the dialer can propagate the trace
// context (the server does, in the upgrade request's headers).
type Dialer func(ctx context.Context) (net.Conn, error)

// RunDestination pulls a VM from the source that dial reaches, building it
// with backend. On success it returns the VM, running. On failure the VM
// it was building is destroyed and the error is an *Error naming the phase.
func RunDestination(ctx context.Context, dial Dialer, backend vmm.Backend, id ID, cfg Config) (vmm.VM, *Result, error) {
	s := &side{cfg: cfg, role: schema.RoleDestination, clock: vmm.SystemClock(),
		result: &Result{ID: id, Role: schema.RoleDestination}}
	s.start(ctx, schema.SpanMigration, attribute.String(schema.AttrBackend, backend.Name()))
	d := &destination{side: s, backend: backend, dial: dial}
	err := d.run()
	if err != nil {
		d.abort(err)
	}
	if s.conn != nil {
		defer s.conn.Close()
	}
	s.finish(err)
	if err != nil {
		return nil, s.result, err
	}
	return d.vm, s.result, nil
}

type destination struct {
	*side
	backend vmm.Backend
	dial    Dialer
	vm      vmm.VM
	ram     *ramReceiver
	// postPause is the RoundBegin that ended the pre-pause phase.
	postPause *wire.RoundBegin
	clockOK   bool
}

func (d *destination) run() error {
	return d.runPhases(map[schema.Phase]phaseFunc{
		schema.PhaseSync:             d.sync,
		schema.PhaseRamPushPrePause:  d.ramPushPrePause,
		schema.PhaseRamPushPostPause: d.ramPushPostPause,
		schema.PhaseTimeData:         d.timeData,
		schema.PhaseDeviceState:      d.deviceState,
		schema.PhaseRamPull:          d.ramPull,
		schema.PhaseServerState:      d.serverState,
		schema.PhaseFinish:           d.finishPhase,
	})
}

func (d *destination) sync(ctx context.Context, _ *PhaseRecord) error {
	nc, err := d.dial(d.ctx)
	if err != nil {
		return fmt.Errorf("connecting to the source: %w", err)
	}
	d.result.Peer = nc.RemoteAddr().String()
	d.span.SetAttributes(attribute.String(schema.AttrPeer, d.result.Peer))
	d.conn = wire.NewConn(nc, wire.WithIOTimeout(d.cfg.IOTimeout), wire.WithMaxBandwidth(d.cfg.MaxBandwidth))
	version, err := wire.HandshakeClient(ctx, d.conn, wire.SupportedVersions)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	d.span.SetAttributes(attribute.Int64(schema.AttrProtocolVersion, int64(version)))

	syn, err := wire.Expect[*wire.Sync](ctx, d.conn)
	if err != nil {
		return err
	}
	if ID(syn.MigrationID) != d.result.ID {
		return fmt.Errorf("%w: source answered for migration %s, asked for %s", ErrProtocol, ID(syn.MigrationID), d.result.ID)
	}
	if syn.TraceParent != "" {
		if sc := remoteSpanContext(syn.TraceParent, syn.TraceState); sc.IsValid() {
			d.span.AddLink(trace.Link{SpanContext: sc})
		}
	}
	var spec vmm.Spec
	if err := json.Unmarshal(syn.Spec, &spec); err != nil {
		return fmt.Errorf("%w: decoding the source's instance spec: %w", ErrProtocol, err)
	}
	if spec.Backend != d.backend.Name() {
		return fmt.Errorf("%w: source VM uses backend %q, this server hosts %q", vmm.ErrIncompatible, spec.Backend, d.backend.Name())
	}
	d.span.SetAttributes(attribute.Int64(schema.AttrMemoryBytes, int64(spec.MemoryBytes)))
	vm, err := d.backend.New(spec)
	if err != nil {
		return fmt.Errorf("creating the VM from the source's spec: %w", err)
	}
	d.vm = vm
	d.clock = clockOf(vm)
	d.ram = newRAMReceiver(d.side, vm)

	if err := d.measureClock(ctx); err != nil {
		return err
	}
	return d.conn.Send(ctx, &wire.Okay{})
}

// measureClock estimates the source's wall-clock offset with NTP-style
// exchanges, keeping the one with the least delay.
func (d *destination) measureClock(ctx context.Context) error {
	samples := make([]wire.ClockSample, 0, d.cfg.ClockProbes)
	for i := 0; i < d.cfg.ClockProbes; i++ {
		_, w1 := d.clock.Now()
		t1 := wallNs(w1)
		if err := d.conn.Send(ctx, &wire.ClockProbe{Seq: uint32(i), T1: t1}); err != nil {
			return err
		}
		reply, err := wire.Expect[*wire.ClockReply](ctx, d.conn)
		if err != nil {
			return err
		}
		_, w4 := d.clock.Now()
		if reply.Seq != uint32(i) || reply.T1 != t1 {
			return fmt.Errorf("%w: clock reply %d echoes T1 %d, sent probe %d at %d", ErrProtocol, reply.Seq, reply.T1, i, t1)
		}
		samples = append(samples, reply.Sample(wallNs(w4)))
	}
	est, err := wire.EstimateOffset(samples)
	if err != nil {
		// Not fatal: without an estimate the migration proceeds as
		// propolis does, trusting the clocks; the trace says so.
		d.cfg.Logger.Warn("no usable clock-offset sample", "err", err)
		spanFrom(ctx).AddEvent(schema.EventClockOffset, trace.WithAttributes(
			attribute.Int64(schema.AttrClockSamples, 0)))
		return nil
	}
	d.clockOK = true
	d.result.Clock = est
	d.result.SkewCorrected = d.cfg.ClockSkewCorrection
	// The wire estimate is source minus destination; traces and metrics
	// report the destination's clock minus the source's.
	dstMinusSrc := -time.Duration(est.OffsetNs)
	spanFrom(ctx).AddEvent(schema.EventClockOffset, trace.WithAttributes(tracing.ClockOffsetAttributes(
		dstMinusSrc, time.Duration(est.ErrorBoundNs), time.Duration(est.RTTNs),
		est.Samples, d.cfg.ClockSkewCorrection)...))
	if m := d.cfg.Metrics; m != nil {
		m.ClockOffset(ctx, dstMinusSrc, time.Duration(est.ErrorBoundNs))
	}
	return nil
}

func (d *destination) ramPushPrePause(ctx context.Context, rec *PhaseRecord) error {
	for {
		begin, err := wire.Expect[*wire.RoundBegin](ctx, d.conn)
		if err != nil {
			return err
		}
		if begin.Paused {
			d.postPause = begin
			return nil
		}
		if int(begin.Round) != rec.Rounds {
			return fmt.Errorf("%w: round %d began, expected round %d", ErrProtocol, begin.Round, rec.Rounds)
		}
		st, err := d.ram.recvRound(ctx, begin)
		if err != nil {
			return err
		}
		rec.Rounds++
		rec.Pages += st.pages
		rec.ZeroPages += st.zeroPages
		rec.Bytes += st.bytes
		d.result.Rounds = rec.Rounds
	}
}

func (d *destination) ramPushPostPause(ctx context.Context, rec *PhaseRecord) error {
	st, err := d.ram.recvRound(ctx, d.postPause)
	if err != nil {
		return err
	}
	rec.Pages, rec.ZeroPages, rec.Bytes, rec.Rounds = st.pages, st.zeroPages, st.bytes, 1
	return nil
}

// timeData adjusts the source's time data to this host and writes it to
// the VMM, recording the three stages.
func (d *destination) timeData(ctx context.Context, _ *PhaseRecord) error {
	msg, err := wire.Expect[*wire.TimeData](ctx, d.conn)
	if err != nil {
		return err
	}
	received := d.now()
	src := msg.Data
	// The Migration stage is the data as the source read it.
	adjSrc := src
	if d.cfg.ClockSkewCorrection && d.clockOK {
		// Express the source's wall clock on this host's clock before taking
		// the delta, so a skew between the hosts does not leak into it.
		w, ok := src.Wallclock.AddNs(-d.result.Clock.OffsetNs)
		if !ok {
			return fmt.Errorf("importing time data: correcting the source wall clock %s by %d ns overflows", src.Wallclock, -d.result.Clock.OffsetNs)
		}
		adjSrc.Wallclock = w
	}
	dstHrt, dstWall := d.clock.Now()
	adjusted, adj, err := timedata.Adjust(adjSrc, dstHrt, dstWall)
	if err != nil {
		return fmt.Errorf("importing time data: %w", err)
	}
	if adj.MigrateDeltaNegative {
		d.cfg.Logger.Warn("destination wall clock is behind the source's; migration delta clamped to 0",
			"source", src.Wallclock.String(), "destination", dstWall.String())
	}
	d.result.Adjustments = adj
	beforeWrite := d.now()
	tw, err := d.vm.WriteTimeData(ctx, adjusted)
	if err != nil {
		return fmt.Errorf("importing time data: %w", err)
	}
	stages := []StageRecord{
		{Stage: schema.StageMigration, Data: src, DurationNs: adj.MigrateDelta},
		{Stage: schema.StageUserspace, Data: adjusted, DurationNs: beforeWrite - received,
			TSCDelta: adjusted.GuestTSC - src.GuestTSC, BootHrtimeDelta: adjusted.BootHrtime - src.BootHrtime},
		{Stage: schema.StageKernel, Data: tw.Applied, DurationNs: tw.Duration,
			TSCDelta: tw.Applied.GuestTSC - adjusted.GuestTSC, BootHrtimeDelta: tw.Applied.BootHrtime - adjusted.BootHrtime,
			VMMLatencyNs: tw.Latency},
	}
	d.result.Stages = stages
	span := spanFrom(ctx)
	for _, st := range stages {
		probes.TimeStage(st.Stage, st.Data.GuestFreq, st.Data.GuestTSC, st.Data.BootHrtime, st.DurationNs,
			adj.GuestUptime, adj.MigrateDelta, adj.MigrateDeltaNegative)
		if span.IsRecording() { // the attributes cost more than the rest of the phase
			span.AddEvent(schema.EventTimeDataStage, trace.WithAttributes(tracing.StageEventAttributes(
				st.Stage, st.Data, st.DurationNs, st.TSCDelta, st.BootHrtimeDelta, adj, st.VMMLatencyNs)...))
		}
		if m := d.cfg.Metrics; m != nil && st.Stage != schema.StageMigration {
			m.TSCAdjustment(ctx, st.Stage, st.TSCDelta)
		}
	}
	return d.conn.Send(ctx, &wire.Okay{})
}

func (d *destination) deviceState(ctx context.Context, _ *PhaseRecord) error {
	msg, err := wire.Expect[*wire.DeviceState](ctx, d.conn)
	if err != nil {
		return err
	}
	if err := d.vm.ImportDevices(ctx, msg.Devices); err != nil {
		return fmt.Errorf("importing device state: %w", err)
	}
	return d.conn.Send(ctx, &wire.Okay{})
}

// ramPull asks the source for every page that never arrived (normally
// none: the first round sends all of RAM) and receives them.
func (d *destination) ramPull(ctx context.Context, rec *PhaseRecord) error {
	missing := newBitmap(d.ram.pages)
	missing.fill(d.ram.pages)
	for i := range missing {
		missing[i] &^= d.ram.received[i]
	}
	var runs []wire.PageRun
	_ = missing.runs(1<<31, func(first, count uint64) error {
		runs = append(runs, wire.PageRun{First: first, Count: uint32(count)})
		return nil
	})
	if len(runs) > wire.MaxRuns {
		return fmt.Errorf("%w: %d page runs never arrived", ErrProtocol, len(runs))
	}
	if err := d.conn.Send(ctx, &wire.PullRequest{Runs: runs}); err != nil {
		return err
	}
	var st roundStats
	for {
		m, err := d.conn.Recv(ctx)
		if err != nil {
			return err
		}
		handled, err := d.ram.page(ctx, m, &st, true)
		if err != nil {
			return err
		}
		if handled {
			continue
		}
		if _, ok := m.(*wire.PullEnd); !ok {
			return unexpected(m, "PageData, ZeroPages or PullEnd")
		}
		break
	}
	if want := missing.count(); st.pages != want {
		return fmt.Errorf("%w: pulled %d pages, asked for %d", ErrProtocol, st.pages, want)
	}
	rec.Pages, rec.ZeroPages, rec.Bytes = st.pages, st.zeroPages, st.bytes
	return nil
}

func (d *destination) serverState(ctx context.Context, _ *PhaseRecord) error {
	if err := d.conn.Send(ctx, &wire.ServerState{Name: d.cfg.Name, Address: d.cfg.Address}); err != nil {
		return err
	}
	peer, err := wire.Expect[*wire.ServerState](ctx, d.conn)
	if err != nil {
		return err
	}
	d.span.SetAttributes(attribute.String(schema.AttrPeer, peer.Name+" "+peer.Address))
	return nil
}

func (d *destination) finishPhase(ctx context.Context, _ *PhaseRecord) error {
	fin, err := wire.Expect[*wire.Finish](ctx, d.conn)
	if err != nil {
		return err
	}
	span := spanFrom(ctx)
	for _, p := range fin.Phases {
		rec := PhaseRecord{Phase: schema.Phase(p.Phase), BeginNs: p.BeginNs, EndNs: p.EndNs, Bytes: p.Bytes, Pages: p.Pages}
		d.result.SourcePhases = append(d.result.SourcePhases, rec)
		span.AddEvent(schema.EventSourcePhase, trace.WithAttributes(
			attribute.String(schema.AttrPhase, rec.Phase.String()),
			attribute.Int64(schema.AttrPhaseBeginNs, rec.BeginNs),
			attribute.Int64(schema.AttrPhaseEndNs, rec.EndNs),
			attribute.Int64(schema.AttrRAMBytes, int64(rec.Bytes)),
			attribute.Int64(schema.AttrRAMPages, int64(rec.Pages)),
		))
	}
	checks, err := d.verify(ctx, fin)
	if err != nil {
		span.AddEvent(schema.EventContinuity, trace.WithAttributes(checks...))
		return err
	}
	if err := d.conn.Send(ctx, &wire.Okay{}); err != nil {
		return err
	}
	if _, err := wire.Expect[*wire.Handoff](ctx, d.conn); err != nil {
		return err
	}
	// The guest is ours now.
	if err := d.vm.Resume(ctx); err != nil {
		return fmt.Errorf("resuming the migrated VM: %w", err)
	}
	_, resumed := d.clock.Now()
	defer func() {
		checks = append(checks, d.measureContinuity(ctx)...)
		span.AddEvent(schema.EventContinuity, trace.WithAttributes(checks...))
	}()
	// The pause happened on the source's clock; shift it onto ours with
	// the measured offset (source minus destination) before subtracting.
	blackout := wallNs(resumed) - (fin.PauseWall - d.result.Clock.OffsetNs)
	d.result.Blackout = time.Duration(blackout)
	d.result.BlackoutError = time.Duration(d.result.Clock.ErrorBoundNs)
	blackoutAttrs := tracing.BlackoutAttributes(d.result.Blackout, d.result.BlackoutError)
	span.AddEvent(schema.EventBlackout, trace.WithAttributes(blackoutAttrs...))
	d.span.SetAttributes(blackoutAttrs...)
	d.span.SetAttributes(attribute.Int64(schema.AttrSourceDowntimeNs, fin.HandoffWall-fin.PauseWall))
	if m := d.cfg.Metrics; m != nil {
		m.Blackout(ctx, d.result.Blackout)
	}
	return nil
}

// verify checks, before the destination accepts the handoff, that guest
// memory and device state are what the source paused and that the guest's
// TSC ring is monotonic. It returns the checks as event attributes.
func (d *destination) verify(ctx context.Context, fin *wire.Finish) ([]attribute.KeyValue, error) {
	cont, err := d.vm.GuestContinuity()
	if err != nil {
		return nil, fmt.Errorf("reading the guest TSC ring: %w", err)
	}
	d.result.Continuity = cont
	// An all-zero checksum (SHA-256 never gives one) means the source
	// skipped it; the check is then left out, not passed.
	memChecked := fin.MemoryChecksum != [32]byte{}
	memOK := !memChecked || d.ram.hashes.sum() == fin.MemoryChecksum
	devs, err := d.vm.ExportDevices(ctx)
	if err != nil {
		return nil, fmt.Errorf("re-exporting imported device state: %w", err)
	}
	devOK := deviceDigest(devs) == fin.DeviceDigest
	checks := []attribute.KeyValue{
		attribute.Bool(schema.AttrTSCMonotonic, cont.Monotonic),
		attribute.Int64(schema.AttrTSCSamples, int64(cont.Samples)),
		attribute.Bool(schema.AttrDeviceStateMatches, devOK),
	}
	if memChecked {
		checks = append(checks, attribute.Bool(schema.AttrMemoryChecksumOK, memOK))
	} else {
		d.cfg.Logger.Warn("the source sent no memory checksum; guest memory is not checked at the handoff")
	}
	if h, ok := d.vm.(interface{ TSCOffsetHonoured() bool }); ok {
		checks = append(checks, attribute.Bool(schema.AttrTSCOffsetHonoured, h.TSCOffsetHonoured()))
	}
	if d.cfg.SkipVerify {
		return checks, nil
	}
	var problems []error
	if !memOK {
		problems = append(problems, errors.New("guest memory differs from the source's at pause"))
	}
	if !devOK {
		problems = append(problems, errors.New("imported device state differs from the source's"))
	}
	if !cont.Monotonic {
		problems = append(problems, fmt.Errorf("guest TSC ring goes backwards at sample %d of %d", cont.FirstBad, cont.Samples))
	}
	if len(problems) > 0 {
		return checks, fmt.Errorf("%w: %w", ErrVerification, errors.Join(problems...))
	}
	d.result.Verified = true
	return checks, nil
}

// continuityWait bounds how long the destination waits, with the guest
// running, for a backend's TSC continuity measurement.
const continuityWait = 2 * time.Second

// measureContinuity times the resumed guest's TSC against the wall clock,
// on backends that can (vmm.ContinuityMeter). The guest is running: this
// adds nothing to the blackout.
func (d *destination) measureContinuity(ctx context.Context) []attribute.KeyValue {
	meter, ok := d.vm.(vmm.ContinuityMeter)
	if !ok {
		return nil
	}
	mctx, cancel := context.WithTimeout(ctx, continuityWait)
	defer cancel()
	m, err := meter.MeasureTSCContinuity(mctx)
	if err != nil {
		d.cfg.Logger.Warn("measuring guest TSC continuity", "err", err)
		return nil
	}
	d.result.TSCContinuity = &m
	d.cfg.Logger.Info(m.String())
	if !m.Sufficient {
		return nil
	}
	return []attribute.KeyValue{attribute.Int64(schema.AttrContinuityErrorNs, m.ErrorNs)}
}

// abort tells the source why (best effort) and destroys the half-built VM.
func (d *destination) abort(cause error) {
	if d.conn != nil {
		var remote *wire.RemoteError
		if !errors.As(cause, &remote) {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(d.ctx), 2*time.Second)
			_ = d.conn.SendError(ctx, d.phase, cause)
			cancel()
		}
	}
	if d.vm != nil {
		if err := d.vm.Destroy(); err != nil {
			d.cfg.Logger.Error("destroying the VM of a failed migration", "err", err)
		}
		d.vm = nil
	}
}
