package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/pagebits"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// RunSource migrates vm out over nc, which a destination opened (the
// server's upgrade handler passes it in; ctx may carry the destination's
// trace context). It owns nc and closes it.
//
// On success the VM has been handed off and destroyed here. On failure
// before the handoff the dirty bits taken are put back and the VM, if this
// side paused it, resumes with its state intact.
func RunSource(ctx context.Context, nc net.Conn, vm vmm.VM, id ID, cfg Config) (*model.Side, error) {
	return runSource(ctx, &Stream{nc: nc}, vm, id, cfg)
}

// runSource runs the source on st; its handshake is done in Sync unless
// Accept did it already.
func runSource(ctx context.Context, st *Stream, vm vmm.VM, id ID, cfg Config) (*model.Side, error) {
	s := &side{cfg: cfg, role: schema.RoleSource, clock: clockOf(vm), id: id, result: &model.Side{
		Peer: st.nc.RemoteAddr().String(), Backend: vm.Spec().Backend, MemoryBytes: int64(vm.Spec().MemoryBytes)}}
	s.start(ctx)
	s.conn = st.conn
	if s.conn == nil {
		s.conn = newStreamConn(st.nc, s.cfg)
	}
	s.result.ProtocolVersion = int64(st.version)
	s.ctl.setConn(s.conn)
	defer s.conn.Close()

	src := &source{side: s, vm: vm, ram: newRAMSender(s, vm)}
	err := src.run()
	if err != nil {
		// Before abort resumes the guest, so it resumes at full speed.
		if uerr := src.ram.unthrottle(s.ctx); uerr != nil {
			s.cfg.Logger.Error("after a failed migration", "err", uerr)
		}
		src.abort(err)
	}
	s.finish(err)
	return s.result, err
}

type source struct {
	*side
	vm  vmm.VM
	ram *ramSender
	// rounds is the number of pre-copy rounds sent before the pause.
	rounds int
	// peerAPI is the destination's API address, from ServerState.
	peerAPI string

	paused    bool
	handedOff bool
	pauseHrt  int64
	pauseWall int64
	pending   pagebits.Bitmap
	// last takes the dirty log at the pause; allocated before it, out of
	// the downtime.
	last    pagebits.Bitmap
	hashes  chan hashResult
	devices []vmm.DeviceState
	// verify is the memory verification this migration uses, decided at
	// the pause (sourceVerify).
	verify VerifyMemory
}

// scanWorkers is how many goroutines hash the paused VM's memory. One
// leaves a core to the post-pause push it overlaps; on two cores, two
// workers measured slower overall.
const scanWorkers = 2

// hashResult is what the scan at the pause found: the hashes of every
// page (VerifyFull) or of the sample (VerifySampled).
type hashResult struct {
	h       pageHashes
	samples []wire.PageHash
	err     error
}

func (s *source) run() error {
	return s.runPhases(map[schema.Phase]phaseFunc{
		schema.PhaseSync:             s.sync,
		schema.PhaseRamPushPrePause:  s.ramPushPrePause,
		schema.PhasePause:            s.pause,
		schema.PhaseRamPushPostPause: s.ramPushPostPause,
		schema.PhaseTimeData:         s.timeData,
		schema.PhaseDeviceState:      s.deviceState,
		schema.PhaseRamPull:          s.ramPull,
		schema.PhaseServerState:      s.serverState,
		schema.PhaseFinish:           s.finishPhase,
	})
}

func (s *source) sync(ctx context.Context, _ *model.PhaseTiming) error {
	if _, err := ParseVerifyMemory(string(s.cfg.VerifyMemory)); err != nil {
		return err
	}
	if s.result.ProtocolVersion == 0 { // Accept has not agreed one
		version, err := wire.HandshakeServer(ctx, s.conn, wire.SupportedVersions)
		if err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
		s.result.ProtocolVersion = int64(version)
	}
	spec, err := json.Marshal(s.vm.Spec())
	if err != nil {
		return fmt.Errorf("encoding the instance spec: %w", err)
	}
	traceparent, tracestate := tracing.Inject(s.ctx)
	if err := s.conn.Send(ctx, &wire.Sync{
		MigrationID: s.id, TraceParent: traceparent, TraceState: tracestate,
		SourceName: s.cfg.Name, Spec: spec,
	}); err != nil {
		return err
	}
	// The destination now measures the clock offset, then says Okay.
	for {
		m, err := s.conn.Recv(ctx)
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *wire.ClockProbe:
			_, t2 := s.clock.Now()
			reply := &wire.ClockReply{Seq: m.Seq, T1: m.T1, T2: wallNs(t2)}
			_, t3 := s.clock.Now()
			reply.T3 = wallNs(t3)
			if err := s.conn.Send(ctx, reply); err != nil {
				return err
			}
		case *wire.Okay:
			return nil
		default:
			return unexpected(m, "ClockProbe or Okay")
		}
	}
}

func (s *source) ramPushPrePause(ctx context.Context, rec *model.PhaseTiming) error {
	pending, err := s.ram.precopy(ctx, spanFrom(ctx), rec)
	if err != nil {
		return err
	}
	s.pending, s.last = pending, pagebits.New(s.ram.pages)
	s.rounds = int(rec.Rounds)
	if m := s.cfg.Metrics; m != nil {
		m.PrecopyRounds(ctx, s.role, s.rounds)
	}
	return nil
}

func (s *source) pause(ctx context.Context, _ *model.PhaseTiming) error {
	if err := s.vm.Pause(ctx); err != nil {
		return fmt.Errorf("pausing the VM: %w", err)
	}
	s.paused = true
	// Downtime from here on: the rest goes out as fast as the link allows,
	// as QEMU completes a migration without its rate limit. Pre-copy
	// decided to pause from the capped rate, so this only ever shortens
	// the downtime it expected.
	s.conn.LiftBandwidthCap()
	hrt, wall := s.clock.Now()
	s.pauseHrt, s.pauseWall = hrt, wallNs(wall)
	// The guest no longer runs here; should it run here again, after a
	// failure, it runs at full speed.
	if err := s.ram.unthrottle(ctx); err != nil {
		return err
	}
	s.verify = sourceVerify(s.cfg.VerifyMemory, s.result.ProtocolVersion, s.ram.pages)
	if s.verify != s.cfg.VerifyMemory {
		s.cfg.Logger.Info("memory verification changed for this migration", "configured", s.cfg.VerifyMemory,
			"used", s.verify, "protocol_version", s.result.ProtocolVersion, "pages", s.ram.pages)
	}
	// Memory is frozen now: hash it, or the sample, in the background
	// while the last dirty pages go out, for the destination's check at
	// the handoff.
	var scan func() hashResult
	switch s.verify {
	case VerifyFull:
		scan = func() hashResult {
			h, err := scanHashes(s.vm, scanWorkers)
			return hashResult{h: h, err: err}
		}
	case VerifySampled:
		scan = func() hashResult {
			// Drawn here, off the pause's own path (0.1-0.2 ms), yet
			// after the pause all the same.
			samples, err := sampleHashes(s.vm, samplePages(s.ram.pages, SamplePages))
			return hashResult{samples: samples, err: err}
		}
	default:
		return nil
	}
	s.hashes = make(chan hashResult, 1)
	go func() { s.hashes <- scan() }()
	return nil
}

func (s *source) ramPushPostPause(ctx context.Context, rec *model.PhaseTiming) error {
	if err := s.ram.takeDirty(s.last); err != nil {
		return err
	}
	s.pending.Or(s.last)
	st, err := s.ram.sendRound(ctx, s.rounds, true, s.pending)
	if err != nil {
		return err
	}
	st.addTo(rec)
	rec.Rounds = 1
	return nil
}

func (s *source) timeData(ctx context.Context, _ *model.PhaseTiming) error {
	td, err := s.vm.ReadTimeData(ctx)
	if err != nil {
		return fmt.Errorf("reading time data: %w", err)
	}
	// Recorded here as read, so a check of the destination's Migration
	// stage has the source's own word to compare it with.
	s.result.TimeRead = &model.TimeRead{GuestFreq: td.GuestFreq, GuestTSC: td.GuestTSC,
		BootHrtime: td.BootHrtime, Hrtime: td.Hrtime, Wallclock: td.Wallclock.String()}
	spanFrom(ctx).AddEvent(schema.EventTimeDataRead, trace.WithAttributes(spancodec.TimeReadAttributes(*s.result.TimeRead)...))
	if err := s.conn.Send(ctx, &wire.TimeData{Data: td}); err != nil {
		return err
	}
	_, err = wire.Expect[*wire.Okay](ctx, s.conn)
	return err
}

func (s *source) deviceState(ctx context.Context, _ *model.PhaseTiming) error {
	devs, err := s.vm.ExportDevices(ctx)
	if err != nil {
		return fmt.Errorf("exporting device state: %w", err)
	}
	s.devices = devs
	if err := s.conn.Send(ctx, &wire.DeviceState{Devices: devs}); err != nil {
		return err
	}
	_, err = wire.Expect[*wire.Okay](ctx, s.conn)
	return err
}

func (s *source) ramPull(ctx context.Context, rec *model.PhaseTiming) error {
	req, err := wire.Expect[*wire.PullRequest](ctx, s.conn)
	if err != nil {
		return err
	}
	var st roundStats
	if len(req.Runs) == 0 { // the usual answer: nothing to pull
		return s.conn.Send(ctx, &wire.PullEnd{})
	}
	want := pagebits.New(s.ram.pages)
	for _, run := range req.Runs {
		if run.Count == 0 || run.First >= s.ram.pages || uint64(run.Count) > s.ram.pages-run.First {
			return fmt.Errorf("%w: pull of pages %d+%d outside guest memory of %d pages", ErrProtocol, run.First, run.Count, s.ram.pages)
		}
		want.SetRange(run.First, uint64(run.Count))
	}
	err = want.Runs(wire.MaxPagesPerFrame, func(first, count uint64) error {
		return s.ram.sendRun(ctx, first, count, true, &st)
	})
	if err == nil {
		err = s.ram.flushZero(ctx)
	}
	if err != nil {
		return err
	}
	st.addTo(rec)
	return s.conn.Send(ctx, &wire.PullEnd{})
}

func (s *source) serverState(ctx context.Context, _ *model.PhaseTiming) error {
	peer, err := wire.Expect[*wire.ServerState](ctx, s.conn)
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("destination identified", "name", peer.Name, "address", peer.Address)
	s.result.PeerName = peer.Name
	s.peerAPI = reachableAPI(peer.Address, s.result.Peer)
	if s.cfg.OnPeerAPI != nil {
		s.cfg.OnPeerAPI(s.peerAPI)
	}
	return s.conn.Send(ctx, &wire.ServerState{Name: s.cfg.Name, Address: s.cfg.Address})
}

func (s *source) finishPhase(ctx context.Context, _ *model.PhaseTiming) error {
	// An all-zero checksum tells the destination none was taken.
	var checksum [32]byte
	var samples []wire.PageHash
	if s.hashes != nil {
		var hr hashResult
		select {
		case hr = <-s.hashes:
			s.hashes = nil
		case <-ctx.Done():
			return ctx.Err()
		}
		if hr.err != nil {
			return fmt.Errorf("checksumming guest memory: %w", hr.err)
		}
		if s.verify == VerifyFull {
			checksum = hr.h.sum()
		}
		samples = hr.samples
	}
	if s.result.ProtocolVersion >= 2 {
		if err := s.conn.Send(ctx, &wire.MemoryCheck{Mode: verifyModes[s.verify], Samples: samples}); err != nil {
			return err
		}
	}
	_, wall := s.clock.Now()
	fin := &wire.Finish{
		MemoryChecksum: checksum,
		DeviceDigest:   deviceDigest(s.devices),
		PauseHrtime:    s.pauseHrt,
		PauseWall:      s.pauseWall,
		HandoffWall:    wallNs(wall),
	}
	for _, p := range s.result.Phases {
		fin.Phases = append(fin.Phases, wire.PhaseTiming{Phase: uint8(p.Phase), BeginNs: p.BeginNs, EndNs: p.EndNs, Bytes: uint64(p.Bytes), Pages: uint64(p.Pages)})
	}
	h := s.cfg.Handoff
	if err := h.enter(HandoffUndecided); err != nil {
		return err
	}
	if err := s.conn.Send(ctx, fin); err != nil {
		return err
	}
	// The destination verifies and says it is ready to run the guest.
	// Without its Okay this side never commits: abort resumes the VM, and
	// a destination that did answer learns "aborted" from our record.
	if _, err := wire.Expect[*wire.Okay](ctx, s.conn); err != nil {
		return err
	}
	// The commit point: from here this side never resumes the guest on
	// its own. It keeps it paused until the destination says it runs it
	// (Resumed) or that it discarded its copy.
	s.handedOff = true
	h.set(HandoffCommitted)
	err := s.conn.Send(ctx, &wire.Handoff{})
	if err == nil {
		s.result.DowntimeNs = s.now() - s.pauseHrt
		_, err = wire.Expect[*wire.Resumed](ctx, s.conn)
	}
	var digest func()
	if err == nil && s.verify.late() {
		// The destination runs the guest; ours stays paused, as frozen at
		// the pause, until it is hashed for the check after the handoff.
		// The digest goes out last, once this side is done with the VM,
		// so that the migration's end on the destination follows ours.
		digest = s.memoryDigest(ctx)
	}
	if err != nil {
		var remote *wire.RemoteError
		if errors.As(err, &remote) {
			// The destination said it failed after our commit: it does not
			// run the guest, so this side resumes it.
			s.handedOff = false
			return fmt.Errorf("the destination could not take the guest after the handoff: %w", err)
		}
		r, werr := s.awaitOutcome(ctx, s.peerAPI, sourceVerdict)
		if werr != nil {
			// Neither the peer nor an operator said: the guest stays
			// paused here, and this side's record says committed.
			return fmt.Errorf("the handoff's outcome is unknown (the VM stays paused here): %w (after %v)", werr, err)
		}
		if r == ResolveAbort {
			s.handedOff = false
			return fmt.Errorf("the destination does not run the guest after the handoff, so it runs on here: %w", err)
		}
		if s.verify.late() {
			// The destination runs the guest, learnt from its record; the
			// stream may still carry the digest it waits for.
			digest = s.memoryDigest(ctx)
		}
	}
	if s.result.DowntimeNs == 0 {
		s.result.DowntimeNs = s.now() - s.pauseHrt
	}
	if m := s.cfg.Metrics; m != nil {
		m.Downtime(ctx, time.Duration(s.result.DowntimeNs))
	}
	if err := s.vm.Destroy(); err != nil {
		s.cfg.Logger.Warn("destroying the migrated-out VM", "err", err)
	}
	h.set(HandoffCompleted)
	if digest != nil {
		digest()
	}
	return nil
}

// reachableAPI is the API address a destination advertised, with an
// unspecified host (a server listening on every address: "[::]:7100",
// "0.0.0.0:7100", ":7100") replaced by the host its stream came from,
// streamPeer. Dialled as advertised, it would reach this host's own
// server, which cannot settle a lost handoff.
func reachableAPI(advertised, streamPeer string) string {
	host, port, err := net.SplitHostPort(advertised)
	if err != nil {
		return advertised
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return advertised
	}
	peerHost, _, err := net.SplitHostPort(streamPeer)
	if err != nil || peerHost == "" {
		return advertised
	}
	return net.JoinHostPort(peerHost, port)
}

// sourceVerdict settles a committed source's pending handoff from the
// destination's record: it runs the guest (commit: destroy ours) or it
// discarded or never had it (abort: resume ours). Otherwise keep asking.
func sourceVerdict(peer HandoffState, err error) Resolution {
	switch {
	case errors.Is(err, ErrUnknownMigration):
		// The destination's server restarted: no copy survives there.
		return ResolveAbort
	case err != nil:
		return ""
	case peer == HandoffResumed:
		return ResolveCommit
	case peer == HandoffAborted:
		return ResolveAbort
	}
	return "" // ready: it will learn our commit and resume
}

// abort undoes a failed migration on the source: it tells the peer why
// (best effort), puts back the dirty bits it took and resumes the VM if it
// paused it. After the handoff there is nothing to undo.
func (s *source) abort(cause error) {
	if s.handedOff {
		return
	}
	s.cfg.Handoff.set(HandoffAborted)
	// A fresh context: the migration's may be what was cancelled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 2*time.Second)
	defer cancel()
	var remote *wire.RemoteError
	if !errors.As(cause, &remote) {
		_ = s.conn.SendError(ctx, s.phase, cause)
	}
	if s.hashes != nil {
		<-s.hashes // the scan reads the VM; let it finish before resuming
	}
	if err := s.ram.restoreDirty(); err != nil {
		s.cfg.Logger.Error("restoring the dirty log after a failed migration", "err", err)
	}
	if s.paused {
		if err := s.vm.Resume(ctx); err != nil {
			s.cfg.Logger.Error("resuming the VM after a failed migration", "err", err)
		}
	}
}
