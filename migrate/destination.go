package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// Dialer opens the migration stream to the source. ctx carries the
// destination's migration span, so the dialer can propagate the trace
// context (the server does, in the upgrade request's headers).
type Dialer func(ctx context.Context) (net.Conn, error)

// RunDestination pulls a VM from the source that dial reaches, building it
// with backend. On success it returns the VM, running. On failure the VM
// it was building is destroyed and the error is an *Error naming the phase.
func RunDestination(ctx context.Context, dial Dialer, backend vmm.Backend, id ID, cfg Config) (vmm.VM, *model.Side, error) {
	s := &side{cfg: cfg, role: schema.RoleDestination, clock: vmm.SystemClock(), id: id,
		result: &model.Side{Backend: backend.Name()}}
	s.start(ctx)
	d := &destination{side: s, backend: backend, dial: dial}
	err := d.run()
	if err != nil {
		d.abort(err)
	} else {
		d.awaitSourceClose()
	}
	if s.conn != nil {
		defer s.conn.Close()
	}
	s.finish(err)
	if err != nil && d.ready {
		// The outcome is unknown: the verified guest stays, paused, with
		// the caller.
		return d.vm, s.result, err
	}
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
	// ready is set from our Okay to Finish until the outcome is known:
	// while it is, abort keeps the guest.
	ready bool
	// clockEst is Sync's estimate of the source's wall clock minus this
	// host's; clockOK says whether one was made.
	clockEst wire.ClockEstimate
	clockOK  bool
	// check is the source's MemoryCheck (version 2), nil before it.
	check *wire.MemoryCheck
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

func (d *destination) sync(ctx context.Context, _ *model.PhaseTiming) error {
	nc, err := d.dial(d.ctx)
	if err != nil {
		return fmt.Errorf("connecting to the source: %w", err)
	}
	d.result.Peer = nc.RemoteAddr().String()
	d.conn = wire.NewConn(nc, wire.WithIOTimeout(d.cfg.IOTimeout), wire.WithMaxBandwidth(d.cfg.MaxBandwidth))
	d.ctl.setConn(d.conn)
	version, err := wire.HandshakeClient(ctx, d.conn, wire.SupportedVersions)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	d.result.ProtocolVersion = int64(version)

	syn, err := wire.Expect[*wire.Sync](ctx, d.conn)
	if err != nil {
		return err
	}
	if ID(syn.MigrationID) != d.id {
		return fmt.Errorf("%w: source answered for migration %s, asked for %s", ErrProtocol, ID(syn.MigrationID), d.id)
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
	// Before anything is allocated: a spec is the peer's word, and a VM
	// too large for this host would take the whole process down.
	limits := d.cfg.Limits.WithDefaults()
	limits.Backend = d.backend.Name()
	if err := limits.Check(spec); err != nil {
		return fmt.Errorf("checking capacity: %w", err)
	}
	d.result.MemoryBytes = int64(spec.MemoryBytes)
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
		d.result.ClockOffset = &model.ClockOffset{}
		spanFrom(ctx).AddEvent(schema.EventClockOffset, trace.WithAttributes(
			spancodec.ClockOffsetAttributes(*d.result.ClockOffset)...))
		return nil
	}
	d.clockOK = true
	d.clockEst = est
	// The wire estimate is source minus destination; traces and metrics
	// report the destination's clock minus the source's.
	d.result.ClockOffset = &model.ClockOffset{OffsetNs: -est.OffsetNs, ErrorNs: est.ErrorBoundNs,
		RTTNs: est.RTTNs, Samples: int64(est.Samples), SkewCorrected: d.cfg.ClockSkewCorrection}
	spanFrom(ctx).AddEvent(schema.EventClockOffset, trace.WithAttributes(
		spancodec.ClockOffsetAttributes(*d.result.ClockOffset)...))
	if m := d.cfg.Metrics; m != nil {
		m.ClockOffset(ctx, time.Duration(-est.OffsetNs), time.Duration(est.ErrorBoundNs))
	}
	return nil
}

func (d *destination) ramPushPrePause(ctx context.Context, rec *model.PhaseTiming) error {
	for {
		begin, err := wire.Expect[*wire.RoundBegin](ctx, d.conn)
		if err != nil {
			return err
		}
		if begin.Paused {
			d.postPause = begin
			return nil
		}
		if int64(begin.Round) != rec.Rounds {
			return fmt.Errorf("%w: round %d began, expected round %d", ErrProtocol, begin.Round, rec.Rounds)
		}
		st, err := d.ram.recvRound(ctx, begin)
		if err != nil {
			return err
		}
		rec.Rounds++
		st.addTo(rec)
	}
}

func (d *destination) ramPushPostPause(ctx context.Context, rec *model.PhaseTiming) error {
	st, err := d.ram.recvRound(ctx, d.postPause)
	if err != nil {
		return err
	}
	st.addTo(rec)
	rec.Rounds = 1
	return nil
}

// timeData adjusts the source's time data to this host and writes it to
// the VMM, recording the three stages.
func (d *destination) timeData(ctx context.Context, _ *model.PhaseTiming) error {
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
		w, ok := src.Wallclock.AddNs(-d.clockEst.OffsetNs)
		if !ok {
			return fmt.Errorf("importing time data: correcting the source wall clock %s by %d ns overflows", src.Wallclock, -d.clockEst.OffsetNs)
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
	beforeWrite := d.now()
	tw, err := d.vm.WriteTimeData(ctx, adjusted)
	if err != nil {
		return fmt.Errorf("importing time data: %w", err)
	}
	stages := [...]struct {
		stage      schema.Stage
		data       timedata.Data
		durationNs int64
		prev       timedata.Data
		latencyNs  int64
	}{
		{schema.StageMigration, src, adj.MigrateDelta, src, 0},
		{schema.StageUserspace, adjusted, beforeWrite - received, src, 0},
		{schema.StageKernel, tw.Applied, tw.Duration, adjusted, tw.Latency},
	}
	span := spanFrom(ctx)
	for _, st := range stages {
		v := stageValues(st.data, st.prev, adj)
		v.DurationNs, v.VMMLatencyNs = st.durationNs, st.latencyNs
		d.result.Stages[model.StageIndex(st.stage)] = v
		probes.TimeStage(st.stage, v.GuestFreq, v.GuestTSC, v.BootHrtime, v.DurationNs,
			adj.GuestUptime, adj.MigrateDelta, adj.MigrateDeltaNegative)
		if span.IsRecording() { // the attributes cost more than the rest of the phase
			span.AddEvent(schema.EventTimeDataStage, trace.WithAttributes(spancodec.StageAttributes(st.stage, v)...))
		}
		if m := d.cfg.Metrics; m != nil && st.stage != schema.StageMigration {
			m.TSCAdjustment(ctx, st.stage, v.GuestTSCDelta)
		}
	}
	return d.conn.Send(ctx, &wire.Okay{})
}

func (d *destination) deviceState(ctx context.Context, _ *model.PhaseTiming) error {
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
func (d *destination) ramPull(ctx context.Context, rec *model.PhaseTiming) error {
	// Straight from what arrived: a bitmap of what is missing would cost
	// an allocation and three passes over all of memory's bits, in the
	// blackout, for a list that is usually empty.
	var runs []wire.PageRun
	var want uint64
	_ = d.ram.received.ClearRuns(d.ram.pages, 1<<31, func(first, count uint64) error {
		runs = append(runs, wire.PageRun{First: first, Count: uint32(count)})
		want += count
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
	if st.pages != want {
		return fmt.Errorf("%w: pulled %d pages, asked for %d", ErrProtocol, st.pages, want)
	}
	st.addTo(rec)
	return nil
}

func (d *destination) serverState(ctx context.Context, _ *model.PhaseTiming) error {
	if err := d.conn.Send(ctx, &wire.ServerState{Name: d.cfg.Name, Address: d.cfg.Address}); err != nil {
		return err
	}
	peer, err := wire.Expect[*wire.ServerState](ctx, d.conn)
	if err != nil {
		return err
	}
	// Peer stays the address this side dialled; the name is the source's
	// own.
	d.result.PeerName = peer.Name
	return nil
}

func (d *destination) finishPhase(ctx context.Context, _ *model.PhaseTiming) error {
	if d.result.ProtocolVersion >= 2 {
		check, err := wire.Expect[*wire.MemoryCheck](ctx, d.conn)
		if err != nil {
			return err
		}
		d.check = check
	}
	fin, err := wire.Expect[*wire.Finish](ctx, d.conn)
	if err != nil {
		return err
	}
	span := spanFrom(ctx)
	for _, p := range fin.Phases {
		rec := model.PhaseTiming{Phase: schema.Phase(p.Phase), BeginNs: p.BeginNs, EndNs: p.EndNs,
			Bytes: int64(p.Bytes), Pages: int64(p.Pages)}
		if !rec.Phase.Valid() {
			return fmt.Errorf("%w: the source reported timings of unknown phase %d", ErrProtocol, p.Phase)
		}
		d.result.SourcePhases = append(d.result.SourcePhases, rec)
		span.AddEvent(schema.EventSourcePhase, trace.WithAttributes(spancodec.SourcePhaseAttributes(rec)...))
	}
	d.result.SourceDowntimeNs = fin.HandoffWall - fin.PauseWall
	err = d.verify(ctx, fin)
	if err != nil {
		span.AddEvent(schema.EventContinuity, trace.WithAttributes(spancodec.ContinuityAttributes(*d.result.Continuity)...))
		return err
	}
	// Ready: from the Okay on, this side never discards the verified
	// guest unless the source says it runs it, or an operator does.
	h := d.cfg.Handoff
	if err := h.enter(HandoffReady); err != nil {
		return err
	}
	d.ready = true
	err = d.conn.Send(ctx, &wire.Okay{})
	if err == nil {
		_, err = wire.Expect[*wire.Handoff](ctx, d.conn)
	}
	if err != nil {
		var remote *wire.RemoteError
		if errors.As(err, &remote) {
			d.ready = false
			return err // the source said it aborted: it runs the guest
		}
		r, werr := d.awaitOutcome(ctx, d.cfg.PeerAPI, destinationVerdict)
		if werr != nil {
			return fmt.Errorf("the handoff's outcome is unknown (the verified VM stays paused here): %w (after %v)", werr, err)
		}
		if r == ResolveAbort {
			d.ready = false
			return fmt.Errorf("the source runs the guest: %w", err)
		}
		d.cfg.Logger.Warn("the Handoff was lost, but the source committed: resuming the guest here", "err", err)
	}
	// The guest is ours now.
	if err := d.vm.Resume(ctx); err != nil {
		// Tell the source, which still holds its paused copy, that this
		// side cannot run the guest; our record says so too.
		d.ready = false
		return fmt.Errorf("resuming the migrated VM: %w", err)
	}
	h.set(HandoffResumed)
	if err := d.conn.Send(ctx, &wire.Resumed{}); err != nil {
		// The source learns it from our record instead.
		d.cfg.Logger.Warn("sending Resumed; the source will ask our API", "err", err)
	}
	_, resumed := d.clock.Now()
	resumedAt := time.Now()
	defer func() {
		d.measureContinuity(ctx)
		span.AddEvent(schema.EventContinuity, trace.WithAttributes(spancodec.ContinuityAttributes(*d.result.Continuity)...))
	}()
	// The pause happened on the source's clock; shift it onto ours with
	// the measured offset (source minus destination) before subtracting.
	// Without an estimate the clocks are taken as equal and the error is
	// unknown, not zero.
	b := &model.Blackout{Ns: wallNs(resumed) - (fin.PauseWall - d.clockEst.OffsetNs)}
	if d.clockOK {
		b.ErrorNs = &d.clockEst.ErrorBoundNs
	}
	d.result.Blackout = b
	span.AddEvent(schema.EventBlackout, trace.WithAttributes(spancodec.BlackoutAttributes(*b)...))
	if m := d.cfg.Metrics; m != nil {
		m.Blackout(ctx, time.Duration(b.Ns))
	}
	if verifyOf(d.mode(fin)).late() {
		d.verifyLate(ctx, resumedAt)
	}
	return nil
}

// mode is the memory verification the source chose: its MemoryCheck's,
// or for a version-1 source, full exactly when it sent a checksum.
func (d *destination) mode(fin *wire.Finish) wire.VerifyMode {
	switch {
	case d.check != nil:
		return d.check.Mode
	case fin.MemoryChecksum != [32]byte{}:
		return wire.VerifyFull
	}
	return wire.VerifyOff
}

// sourceCloseWait bounds how long a destination that is done waits for
// the source to close the stream.
const sourceCloseWait = time.Second

// awaitSourceClose waits, briefly, for the source to close the stream,
// which it does once its side of the migration is over: whoever sees the
// destination done then finds the source done too, not still sending its
// last message or destroying its copy. The guest already runs here; this
// only orders the two ends' records.
func (d *destination) awaitSourceClose() {
	ctx, cancel := context.WithTimeout(d.ctx, sourceCloseWait)
	defer cancel()
	d.conn.SetIOTimeout(sourceCloseWait)
	if m, err := d.conn.Recv(ctx); err == nil {
		d.cfg.Logger.Warn("the source sent a message after the end of the migration", "type", m.Type())
	}
}

// verify checks, before the destination accepts the handoff, that guest
// memory and device state are what the source paused and that the guest's
// TSC ring is monotonic. It records the checks in the side's Continuity,
// which is set whenever it returns.
func (d *destination) verify(ctx context.Context, fin *wire.Finish) error {
	mode := d.mode(fin)
	d.result.Continuity = &model.Continuity{MemoryUnchecked: true, MemoryVerify: string(verifyOf(mode))}
	cont, err := d.vm.GuestContinuity()
	if err != nil {
		return fmt.Errorf("reading the guest TSC ring: %w", err)
	}
	// The checksum is all zero (SHA-256 never gives that) exactly when the
	// mode compares no full checksum before the handoff, and only a sample
	// carries samples.
	hasSum, samples := fin.MemoryChecksum != [32]byte{}, 0
	if d.check != nil {
		samples = len(d.check.Samples)
	}
	if hasSum != (mode == wire.VerifyFull) || (samples > 0) != (mode == wire.VerifySampled) {
		return fmt.Errorf("%w: memory verification %s with a checksum %v and %d samples", ErrProtocol, mode, hasSum, samples)
	}
	memChecked, memOK := false, true
	var memProblem error
	switch mode {
	case wire.VerifyFull:
		memChecked, memOK = true, d.ram.hashes.sum() == fin.MemoryChecksum
		memProblem = errors.New("guest memory differs from the source's at pause")
	case wire.VerifySampled:
		bad, err := checkSample(d.check.Samples, d.ram.hashes)
		if err != nil {
			return err
		}
		memChecked, memOK = true, len(bad) == 0
		d.result.Continuity.MemorySamplePages = int64(len(d.check.Samples))
		memProblem = fmt.Errorf("guest memory differs from the source's at pause in %d of %d sampled pages: %s",
			len(bad), len(d.check.Samples), pageList(bad))
	}
	devs, err := d.vm.ExportDevices(ctx)
	if err != nil {
		return fmt.Errorf("re-exporting imported device state: %w", err)
	}
	devOK := deviceDigest(devs) == fin.DeviceDigest
	c := d.result.Continuity
	c.TSCMonotonic, c.TSCSamples, c.TSCLast, c.DeviceStateMatches = cont.Monotonic, int64(cont.Samples), cont.Last, devOK
	c.MemoryUnchecked, c.MemoryChecksumOK = !memChecked, memChecked && memOK
	switch mode {
	case wire.VerifyOff:
		d.cfg.Logger.Warn("the source asked for no memory verification; guest memory is not checked")
	case wire.VerifyAfter:
		d.cfg.Logger.Info("guest memory is checked after the handoff, not before it")
	}
	if h, ok := d.vm.(interface{ TSCOffsetHonoured() bool }); ok {
		honoured := h.TSCOffsetHonoured()
		c.TSCOffsetHonoured = &honoured
	}
	if d.cfg.SkipVerify {
		return nil
	}
	var problems []error
	if !memOK {
		problems = append(problems, memProblem)
	}
	if !devOK {
		problems = append(problems, errors.New("imported device state differs from the source's"))
	}
	if !cont.Monotonic {
		problems = append(problems, fmt.Errorf("guest TSC ring goes backwards at sample %d of %d", cont.FirstBad, cont.Samples))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w", ErrVerification, errors.Join(problems...))
	}
	return nil
}

// continuityWait bounds how long the destination waits, with the guest
// running, for a backend's TSC continuity measurement.
const continuityWait = 2 * time.Second

// measureContinuity times the resumed guest's TSC against the wall clock,
// on backends that can (vmm.ContinuityMeter), into the side's Continuity.
// The guest is running: this adds nothing to the blackout.
func (d *destination) measureContinuity(ctx context.Context) {
	meter, ok := d.vm.(vmm.ContinuityMeter)
	if !ok {
		return
	}
	mctx, cancel := context.WithTimeout(ctx, continuityWait)
	defer cancel()
	m, err := meter.MeasureTSCContinuity(mctx)
	if err != nil {
		d.cfg.Logger.Warn("measuring guest TSC continuity", "err", err)
		return
	}
	d.cfg.Logger.Info(m.String())
	if !m.Sufficient {
		return
	}
	d.result.Continuity.ErrorNs, d.result.Continuity.ErrorSamples = &m.ErrorNs, int64(m.Samples)
	honoured := m.OffsetHonoured
	d.result.Continuity.TSCOffsetHonoured = &honoured
}

// destinationVerdict settles a ready destination's pending handoff from
// the source's record: committed (resume ours) or aborted, which means it
// runs the guest again (discard ours). A source whose server restarted
// holds no copy, so ours is the only one left. Otherwise keep asking.
func destinationVerdict(peer HandoffState, err error) Resolution {
	switch {
	case errors.Is(err, ErrUnknownMigration):
		return ResolveCommit
	case err != nil:
		return ""
	case peer == HandoffCommitted || peer == HandoffCompleted:
		return ResolveCommit
	case peer == HandoffAborted:
		return ResolveAbort
	}
	return "" // undecided: it will time out on our Okay and abort
}

// abort tells the source why (best effort) and destroys the half-built VM.
func (d *destination) abort(cause error) {
	if d.ready {
		// Still ready means the outcome is unknown: keep the verified,
		// paused guest for an operator rather than risk losing it.
		d.cfg.Logger.Error("keeping the verified guest paused: the handoff's outcome is unknown", "err", cause)
		return
	}
	d.cfg.Handoff.set(HandoffAborted)
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

// stageValues is time data d as a time-data stage of the side's model,
// with its change from the previous stage's data prev.
func stageValues(d, prev timedata.Data, adj timedata.Adjustments) model.StageValues {
	return model.StageValues{
		Present: true, GuestFreq: d.GuestFreq, GuestTSC: d.GuestTSC, BootHrtime: d.BootHrtime,
		Hrtime: d.Hrtime, Wallclock: d.Wallclock.String(),
		GuestTSCDelta: d.GuestTSC - prev.GuestTSC, BootHrtimeDelta: d.BootHrtime - prev.BootHrtime,
		GuestUptimeNs: adj.GuestUptime, MigrateDeltaNs: adj.MigrateDelta, MigrateDeltaNegative: adj.MigrateDeltaNegative,
	}
}
