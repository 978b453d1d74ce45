package migrate

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate/internal/zeropage"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/pagebits"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/spancodec"
)

// roundStats is what one RAM round moved.
type roundStats struct {
	pages, zeroPages, bytes uint64
	wireBytes               uint64
	elapsed                 time.Duration
}

// addTo adds the round's counts to a phase's.
func (st roundStats) addTo(rec *model.PhaseTiming) {
	rec.Pages += int64(st.pages)
	rec.ZeroPages += int64(st.zeroPages)
	rec.Bytes += int64(st.bytes)
}

// ramSender pushes pages from the source VM.
type ramSender struct {
	s     *side
	vm    vmm.VM
	pages uint64
	meter ramMeter
	// pd frames runs of buf in place, so pages go from buf to the socket
	// without another copy.
	pd   *wire.PageData
	buf  []byte
	zero []wire.PageRun
	// taken accumulates every dirty bit taken from the VM, so that a failed
	// migration can put them all back.
	taken pagebits.Bitmap
	// rate is the measured wire throughput in bytes/s (0 until measured).
	rate float64
	// conv is auto-converge, off unless configured and the VM can be
	// throttled.
	conv converger

	// isZero says which pages of the run being read are all zero.
	isZero [wire.MaxPagesPerFrame]bool
	// visitor shows the VM's pages in place, when it can; visit is the
	// callback readRun gives it, made once so a run allocates nothing,
	// and runFirst and runData are the run it reads into.
	visitor  vmm.PageVisitor
	visit    func(page uint64, data []byte)
	runFirst uint64
	runData  []byte

	// list gathers the pages of short runs (version 2); listPages counts
	// the pages, zero ones included, accounted to it since it last went.
	list      *wire.PageList
	listPages uint64
}

// listRun is the shortest run of dirty pages sent as PageData; shorter
// ones go in PageList frames (version 2), 512 pages to a frame instead of
// one frame each.
const listRun = 16

func newRAMSender(s *side, vm vmm.VM) *ramSender {
	pages := vm.Spec().Pages()
	pd := wire.NewPageData(wire.MaxPagesPerFrame)
	r := &ramSender{
		s: s, vm: vm, pages: pages,
		pd: pd, buf: pd.Data,
		taken: pagebits.New(pages),
		meter: ramMeter{m: s.cfg.Metrics, role: schema.RoleSource},
	}
	// The converger is ready on any VM that can be throttled: whether it
	// steps is the live setting, which an operator may turn on mid-way.
	if t, ok := vm.(vmm.Throttler); ok {
		r.conv = converger{t: t, initial: s.cfg.ThrottleInitial, increment: s.cfg.ThrottleIncrement, max: s.cfg.ThrottleMax}
	} else if s.cfg.AutoConverge {
		s.cfg.Logger.Warn("auto-converge is on, but this VM cannot be throttled: it migrates unthrottled", "backend", vm.Spec().Backend)
	}
	r.visitor, _ = vm.(vmm.PageVisitor)
	r.visit = r.visitPage
	r.list = wire.NewPageList(wire.MaxListPages)
	return r
}

// readRun reads the run of len(data)/PageSize pages from first into data,
// and marks in r.isZero which of them are all zero. Where the VM shows
// its pages in place, each is checked there and only pages with data are
// copied: most of an idle guest is never copied at all.
func (r *ramSender) readRun(first uint64, data []byte) error {
	count := uint64(len(data) / vmm.PageSize)
	if r.visitor != nil {
		r.runFirst, r.runData = first, data
		err := r.visitor.VisitPages(first, count, r.visit)
		r.runData = nil
		return err
	}
	if err := r.vm.ReadPages(first, data); err != nil {
		return err
	}
	for i := range count {
		r.isZero[i] = zeropage.IsZero(data[i*vmm.PageSize : (i+1)*vmm.PageSize])
	}
	return nil
}

// visitPage is readRun's callback: the check and the copy happen in one
// visit, so a running guest cannot change the page between them.
func (r *ramSender) visitPage(page uint64, data []byte) {
	i := page - r.runFirst
	if r.isZero[i] = zeropage.IsZero(data); !r.isZero[i] {
		copy(r.runData[i*vmm.PageSize:(i+1)*vmm.PageSize], data)
	}
}

// takeDirty reads and clears the VM's dirty log into b, remembering what
// it took.
func (r *ramSender) takeDirty(b pagebits.Bitmap) error {
	if err := r.vm.TakeDirty(0, r.pages, b); err != nil {
		return fmt.Errorf("reading the dirty log: %w", err)
	}
	r.taken.Or(b)
	return nil
}

// restoreDirty puts back every dirty bit the migration took, so the VM's
// dirty log is as if the migration never happened.
func (r *ramSender) restoreDirty() error {
	return r.vm.RestoreDirty(0, r.pages, r.taken)
}

// sendRound sends the pages set in b as one round and waits for the
// destination's acknowledgement.
func (r *ramSender) sendRound(ctx context.Context, round int, paused bool, b pagebits.Bitmap) (roundStats, error) {
	defer r.meter.flush(ctx)
	start := time.Now()
	wireStart := r.s.conn.BytesSent()
	total := b.Count()
	var st roundStats
	if err := r.s.conn.Send(ctx, &wire.RoundBegin{Round: uint32(round), Paused: paused, Pages: total}); err != nil {
		return st, err
	}
	lists := r.s.result.ProtocolVersion >= 2
	err := b.Runs(wire.MaxPagesPerFrame, func(first, count uint64) error {
		send := r.sendRun
		if lists && count < listRun {
			send = r.addToList
		}
		if err := send(ctx, first, count, paused, &st); err != nil {
			return err
		}
		elapsed := time.Since(start).Seconds()
		p := Progress{Round: round, RoundPages: total, RoundDone: st.pages}
		if elapsed > 0 {
			p.Rate = float64(r.s.conn.BytesSent()-wireStart) / elapsed
			p.RemainingBytes = (total - st.pages) * vmm.PageSize
			if p.Rate > 0 {
				p.ETA = time.Duration(float64(p.RemainingBytes) / p.Rate * float64(time.Second))
			}
		}
		r.s.progress(p)
		return nil
	})
	if err == nil {
		err = r.flushList(ctx, paused)
	}
	if err != nil {
		return st, err
	}
	if err := r.flushZero(ctx); err != nil {
		return st, err
	}
	if err := r.s.conn.Send(ctx, &wire.RoundEnd{Round: uint32(round), PagesSent: st.pages, ZeroPages: st.zeroPages}); err != nil {
		return st, err
	}
	ack, err := wire.Expect[*wire.RoundAck](ctx, r.s.conn)
	if err != nil {
		return st, err
	}
	if ack.Round != uint32(round) || ack.PagesReceived != st.pages {
		return st, fmt.Errorf("%w: destination acknowledged round %d with %d pages, sent round %d with %d",
			ErrProtocol, ack.Round, ack.PagesReceived, round, st.pages)
	}
	st.elapsed = time.Since(start)
	st.wireBytes = r.s.conn.BytesSent() - wireStart
	if secs := st.elapsed.Seconds(); secs > 0 && st.wireBytes > 0 {
		r.rate = float64(st.wireBytes) / secs
	}
	return st, nil
}

// sendRun reads count pages from first and sends them: runs of non-zero
// pages as data, zero pages as a marker.
func (r *ramSender) sendRun(ctx context.Context, first, count uint64, paused bool, st *roundStats) error {
	data := r.buf[:count*vmm.PageSize]
	if err := r.readRun(first, data); err != nil {
		return fmt.Errorf("reading pages %d-%d: %w", first, first+count-1, err)
	}
	var dataBytes uint64
	runStart, runLen := uint64(0), uint64(0)
	flushData := func() error {
		if runLen == 0 {
			return nil
		}
		// Send frames the run in place, over the tail of the page before
		// it, which the scan below has already sent or found zero.
		r.pd.First, r.pd.Count = first+runStart, uint32(runLen)
		r.pd.Data = data[runStart*vmm.PageSize : (runStart+runLen)*vmm.PageSize]
		dataBytes += runLen * vmm.PageSize
		runLen = 0
		return r.s.conn.Send(ctx, r.pd)
	}
	for i := uint64(0); i < count; i++ {
		if r.isZero[i] {
			if err := flushData(); err != nil {
				return err
			}
			if err := r.addZero(ctx, first+i); err != nil {
				return err
			}
			st.zeroPages++
			continue
		}
		if runLen == 0 {
			runStart = i
		}
		runLen++
	}
	if err := flushData(); err != nil {
		return err
	}
	st.pages += count
	st.bytes += dataBytes
	probes.RAMRegion(schema.RoleSource, count, dataBytes, paused)
	r.meter.add(ctx, paused, dataBytes)
	return nil
}

// addToList reads count pages from first into the page list, sending the
// list first if they would not fit: pages with data into its next slots,
// zero pages as a marker.
func (r *ramSender) addToList(ctx context.Context, first, count uint64, paused bool, st *roundStats) error {
	if len(r.list.Pages)+int(count) > cap(r.list.Pages) {
		if err := r.flushList(ctx, paused); err != nil {
			return err
		}
	}
	n := uint64(len(r.list.Pages))
	slots := r.list.Data[n*vmm.PageSize : (n+count)*vmm.PageSize]
	if err := r.readRun(first, slots); err != nil {
		return fmt.Errorf("reading pages %d-%d: %w", first, first+count-1, err)
	}
	kept := uint64(0)
	for i := range count {
		if r.isZero[i] {
			if err := r.addZero(ctx, first+i); err != nil {
				return err
			}
			st.zeroPages++
			continue
		}
		if kept != i { // close the gap a zero page left
			copy(slots[kept*vmm.PageSize:(kept+1)*vmm.PageSize], slots[i*vmm.PageSize:(i+1)*vmm.PageSize])
		}
		r.list.Pages = append(r.list.Pages, first+i)
		kept++
	}
	st.pages += count
	st.bytes += kept * vmm.PageSize
	r.listPages += count
	return nil
}

// flushList sends the page list, if it holds any page.
func (r *ramSender) flushList(ctx context.Context, paused bool) error {
	n := uint64(len(r.list.Pages))
	if r.listPages == 0 {
		return nil
	}
	if n > 0 {
		if err := r.s.conn.Send(ctx, r.list); err != nil {
			return err
		}
	}
	probes.RAMRegion(schema.RoleSource, r.listPages, n*vmm.PageSize, paused)
	r.meter.add(ctx, paused, n*vmm.PageSize)
	r.list.Pages, r.listPages = r.list.Pages[:0], 0
	return nil
}

func (r *ramSender) addZero(ctx context.Context, page uint64) error {
	if n := len(r.zero); n > 0 && r.zero[n-1].First+uint64(r.zero[n-1].Count) == page {
		r.zero[n-1].Count++
		return nil
	}
	if len(r.zero) == wire.MaxRuns {
		if err := r.flushZero(ctx); err != nil {
			return err
		}
	}
	r.zero = append(r.zero, wire.PageRun{First: page, Count: 1})
	return nil
}

func (r *ramSender) flushZero(ctx context.Context) error {
	if len(r.zero) == 0 {
		return nil
	}
	err := r.s.conn.Send(ctx, &wire.ZeroPages{Runs: r.zero})
	r.zero = r.zero[:0]
	return err
}

// precopy runs pre-pause rounds: round 0 sends every page, each later
// round the pages dirtied meanwhile, until what is left could be sent
// within the downtime target at the measured rate, or the round limit is
// reached. It returns the dirty pages still to send.
func (r *ramSender) precopy(ctx context.Context, span trace.Span, rec *model.PhaseTiming) (pagebits.Bitmap, error) {
	cur := pagebits.New(r.pages)
	// Clear the dirty log first so every write from now on is caught.
	if err := r.takeDirty(cur); err != nil {
		return nil, err
	}
	cur.Fill(r.pages)
	if r.conv.on() && r.s.live().AutoConverge {
		r.s.metricThrottle(ctx, 0) // armed, not throttling
	}
	for round := 0; ; round++ {
		st, err := r.sendRound(ctx, round, false, cur)
		if err != nil {
			return nil, err
		}
		st.addTo(rec)
		rec.Rounds = int64(round + 1)
		if err := r.takeDirty(cur); err != nil {
			return nil, err
		}
		dirty := cur.Count()
		pr := model.PrecopyRound{
			Phase: schema.PhaseRamPushPrePause, Round: int64(round),
			Pages: int64(st.pages), ZeroPages: int64(st.zeroPages), Bytes: int64(st.bytes),
			WireBytes: int64(st.wireBytes), DirtyPages: int64(dirty), RoundNs: st.elapsed.Nanoseconds(),
		}
		r.s.result.PrecopyRounds = append(r.s.result.PrecopyRounds, pr)
		span.AddEvent(schema.EventPrecopyRound, trace.WithAttributes(spancodec.RoundAttributes(pr)...))
		r.s.cfg.Logger.Debug("pre-copy round", "round", round, "pages", st.pages, "dirty", dirty,
			"rate", r.rate, "elapsed", st.elapsed)
		if dirty == 0 || round+1 >= int(r.s.live().MaxRounds) || r.fitsDowntime(dirty) {
			return cur, nil
		}
		if err := r.converge(ctx, span, round, dirty, st.wireBytes); err != nil {
			return nil, err
		}
	}
}

// converge feeds a round that did not end pre-copy to auto-converge and
// applies the step it decides on, if any, to the VM: a span event, the
// side's record, the metric.
func (r *ramSender) converge(ctx context.Context, span trace.Span, round int, dirty, wireBytes uint64) error {
	if !r.conv.on() || !r.s.live().AutoConverge {
		return nil
	}
	pct, step := r.conv.observe(dirty*vmm.PageSize, wireBytes)
	if !step {
		return nil
	}
	if err := r.conv.t.SetThrottle(pct); err != nil {
		return fmt.Errorf("auto-converge: throttling the guest to %d %%: %w", pct, err)
	}
	r.conv.applied = pct
	ts := model.ThrottleStep{Round: int64(round), Percent: int64(pct)}
	r.s.result.ThrottleSteps = append(r.s.result.ThrottleSteps, ts)
	span.AddEvent(schema.EventThrottle, trace.WithAttributes(spancodec.ThrottleAttributes(ts)...))
	r.s.metricThrottle(ctx, pct)
	r.s.cfg.Logger.Info("auto-converge: throttling the guest", "round", round, "percent", pct,
		"dirty_bytes", dirty*vmm.PageSize, "wire_bytes", wireBytes)
	return nil
}

// unthrottle lifts auto-converge's throttle, if it set one: at the pause,
// after which the guest no longer runs here, or when the migration fails,
// so a guest that stays here runs at full speed again.
func (r *ramSender) unthrottle(ctx context.Context) error {
	if r.conv.applied == 0 {
		return nil
	}
	if err := r.conv.t.SetThrottle(0); err != nil {
		return fmt.Errorf("auto-converge: lifting the guest's %d %% throttle: %w", r.conv.applied, err)
	}
	r.s.cfg.Logger.Info("auto-converge: throttle lifted", "percent", r.conv.applied)
	r.conv.applied = 0
	r.s.metricThrottle(ctx, 0)
	return nil
}

// Auto-converge's trigger, QEMU's (migration_trigger_throttle): a round
// whose dirtied bytes exceed throttleTrigger % of the bytes it sent is
// "high"; every throttleHighRounds-th high round steps the throttle.
const (
	throttleTrigger    = 50
	throttleHighRounds = 2
)

// converger is auto-converge's state: QEMU's trigger and steps.
type converger struct {
	t                       vmm.Throttler // nil: off
	initial, increment, max int
	// percent is the throttle decided; applied the one the VM has.
	percent, applied int
	// high counts high rounds since the last step.
	high int
}

func (c *converger) on() bool { return c.t != nil }

// observe takes one round's dirtied and sent bytes and returns the
// throttle to apply and whether it is a new step.
func (c *converger) observe(dirtyBytes, wireBytes uint64) (int, bool) {
	if dirtyBytes*100 <= wireBytes*throttleTrigger {
		return c.percent, false
	}
	if c.high++; c.high < throttleHighRounds {
		return c.percent, false
	}
	c.high = 0
	next := c.initial
	if c.percent > 0 {
		next = min(c.percent+c.increment, c.max)
	}
	if next == c.percent {
		return c.percent, false // at the most already
	}
	c.percent = next
	return next, true
}

// fitsDowntime reports whether dirty pages could be sent within the
// downtime target at the rate measured so far.
func (r *ramSender) fitsDowntime(dirty uint64) bool {
	if r.rate <= 0 {
		return false
	}
	est := time.Duration(float64(dirty*vmm.PageSize) / r.rate * float64(time.Second))
	return est <= time.Duration(r.s.live().DowntimeTargetNs)
}

// ramReceiver writes pushed pages into the destination VM.
type ramReceiver struct {
	s        *side
	vm       vmm.VM
	pages    uint64
	meter    ramMeter
	received pagebits.Bitmap
	// written marks pages that hold data: a new VM's memory is zero, so a
	// zero marker for a page never written needs no work.
	written pagebits.Bitmap
	hashes  pageHashes
	// landed is set when the stream read a PageData's pages straight into
	// guest memory (sink), so they need no copy.
	landed bool
}

// newRAMReceiver returns the receiver of vm's pages from s's stream. Where
// the VM takes pages in place (vmm.PageWriter), the stream reads each
// run's pages straight into guest memory: one copy of every page fewer
// than receiving it into a buffer and writing it from there.
func newRAMReceiver(s *side, vm vmm.VM) *ramReceiver {
	pages := vm.Spec().Pages()
	r := &ramReceiver{s: s, vm: vm, pages: pages, received: pagebits.New(pages),
		written: pagebits.New(pages), hashes: newPageHashes(pages),
		meter: ramMeter{m: s.cfg.Metrics, role: schema.RoleDestination}}
	if w, ok := vm.(vmm.PageWriter); ok && s.conn != nil {
		s.conn.SetPageSink(func(first uint64, count uint32) []byte {
			if r.checkRun(first, uint64(count)) != nil {
				return nil // page says why
			}
			buf, err := w.WritablePages(first, uint64(count))
			if err != nil {
				return nil // WritePages will say why
			}
			r.landed = true
			return buf
		})
	}
	return r
}

// zero clears the pages of a run that hold data.
func (r *ramReceiver) zero(first, count uint64) error {
	var err error
	runStart, runLen := uint64(0), uint64(0)
	flush := func() {
		if runLen > 0 && err == nil {
			if zerr := r.vm.ZeroPages(runStart, runLen); zerr != nil {
				err = fmt.Errorf("zeroing pages %d-%d: %w", runStart, runStart+runLen-1, zerr)
			}
		}
		runLen = 0
	}
	for p := first; p < first+count; p++ {
		if !r.written.Get(p) {
			flush()
			continue
		}
		if runLen == 0 {
			runStart = p
		}
		runLen++
		r.written[p/64] &^= 1 << (p % 64)
	}
	flush()
	return err
}

func (r *ramReceiver) checkRun(first, count uint64) error {
	if count == 0 || first >= r.pages || count > r.pages-first {
		return fmt.Errorf("%w: pages %d+%d outside guest memory of %d pages", ErrProtocol, first, count, r.pages)
	}
	return nil
}

// page applies one page-carrying message; ok is false for anything else.
func (r *ramReceiver) page(ctx context.Context, m wire.Message, st *roundStats, paused bool) (bool, error) {
	switch m := m.(type) {
	case *wire.PageData:
		n := uint64(m.Count)
		landed := r.landed
		r.landed = false
		if err := r.checkRun(m.First, n); err != nil {
			return true, err
		}
		if !landed {
			if err := r.vm.WritePages(m.First, m.Data); err != nil {
				return true, fmt.Errorf("writing pages %d-%d: %w", m.First, m.First+n-1, err)
			}
		}
		r.hashes.update(m.First, m.Data)
		r.received.SetRange(m.First, n)
		r.written.SetRange(m.First, n)
		st.pages += n
		st.bytes += n * vmm.PageSize
		probes.RAMRegion(schema.RoleDestination, n, n*vmm.PageSize, paused)
		r.meter.add(ctx, paused, n*vmm.PageSize)
		return true, nil
	case *wire.PageList:
		// Written run by run: neighbours in the list are often neighbours
		// in memory, and a run is one call.
		for i := 0; i < len(m.Pages); {
			j := i + 1
			for j < len(m.Pages) && m.Pages[j] == m.Pages[j-1]+1 {
				j++
			}
			first, n := m.Pages[i], uint64(j-i)
			if err := r.checkRun(first, n); err != nil {
				return true, err
			}
			data := m.Data[i*vmm.PageSize : j*vmm.PageSize]
			if err := r.vm.WritePages(first, data); err != nil {
				return true, fmt.Errorf("writing pages %d-%d: %w", first, first+n-1, err)
			}
			r.hashes.update(first, data)
			r.received.SetRange(first, n)
			r.written.SetRange(first, n)
			i = j
		}
		n := uint64(len(m.Pages))
		st.pages += n
		st.bytes += n * vmm.PageSize
		probes.RAMRegion(schema.RoleDestination, n, n*vmm.PageSize, paused)
		r.meter.add(ctx, paused, n*vmm.PageSize)
		return true, nil
	case *wire.ZeroPages:
		for _, run := range m.Runs {
			n := uint64(run.Count)
			if err := r.checkRun(run.First, n); err != nil {
				return true, err
			}
			if err := r.zero(run.First, n); err != nil {
				return true, err
			}
			r.hashes.zero(run.First, n)
			r.received.SetRange(run.First, n)
			st.pages += n
			st.zeroPages += n
			// Zero pages count as moved, with no payload, as on the source.
			probes.RAMRegion(schema.RoleDestination, n, 0, paused)
		}
		return true, nil
	}
	return false, nil
}

// recvRound receives the round that begin opened, through its RoundEnd,
// and acknowledges it.
func (r *ramReceiver) recvRound(ctx context.Context, begin *wire.RoundBegin) (roundStats, error) {
	defer r.meter.flush(ctx)
	start := time.Now()
	var st roundStats
	wireStart := r.s.conn.BytesReceived()
	lastProgress := start
	for {
		m, err := r.s.conn.Recv(ctx)
		if err != nil {
			return st, err
		}
		handled, err := r.page(ctx, m, &st, begin.Paused)
		if err != nil {
			return st, err
		}
		if handled {
			if now := time.Now(); r.s.cfg.Progress != nil && now.Sub(lastProgress) > 50*time.Millisecond {
				lastProgress = now
				p := Progress{Round: int(begin.Round), RoundPages: begin.Pages, RoundDone: st.pages}
				if secs := now.Sub(start).Seconds(); secs > 0 {
					p.Rate = float64(r.s.conn.BytesReceived()-wireStart) / secs
					if begin.Pages > st.pages {
						p.RemainingBytes = (begin.Pages - st.pages) * vmm.PageSize
					}
					if p.Rate > 0 {
						p.ETA = time.Duration(float64(p.RemainingBytes) / p.Rate * float64(time.Second))
					}
				}
				r.s.progress(p)
			}
			continue
		}
		end, ok := m.(*wire.RoundEnd)
		if !ok {
			return st, unexpected(m, "PageData, ZeroPages or RoundEnd")
		}
		if end.Round != begin.Round || end.PagesSent != st.pages || end.PagesSent != begin.Pages || end.ZeroPages != st.zeroPages {
			return st, fmt.Errorf("%w: round %d ended claiming %d pages (%d zero), announced %d, received %d (%d zero)",
				ErrProtocol, end.Round, end.PagesSent, end.ZeroPages, begin.Pages, st.pages, st.zeroPages)
		}
		st.elapsed = time.Since(start)
		st.wireBytes = r.s.conn.BytesReceived() - wireStart
		return st, r.s.conn.Send(ctx, &wire.RoundAck{Round: end.Round, PagesReceived: st.pages})
	}
}

// unexpected turns a message that does not fit the protocol's state into
// an error; a peer's Error message becomes a *wire.RemoteError.
func unexpected(m wire.Message, want string) error {
	if e, ok := m.(*wire.Error); ok {
		return &wire.RemoteError{Phase: schema.Phase(e.Phase), Message: e.Message}
	}
	return fmt.Errorf("%w: got %s, want %s", wire.ErrUnexpectedMessage, m.Type(), want)
}

// ramMeterEvery is how often a round in progress reports the RAM it
// moved to the metrics: often enough for a dashboard to follow a long
// round, rarely enough that the counter costs nothing beside the pages.
const ramMeterEvery = 100 * time.Millisecond

// ramMeter gathers the bytes of pages moved and reports them to
// Metrics.RAMTransferred at most every ramMeterEvery and at each round's
// end. One report per frame, as before, was the costliest of a
// migration's telemetry: an SDK counter add, with its exemplar, per 2 MiB.
type ramMeter struct {
	m       Metrics
	role    schema.Role
	pending [2]uint64 // by paused
	last    time.Time
}

func (rm *ramMeter) add(ctx context.Context, paused bool, bytes uint64) {
	if rm.m == nil {
		return
	}
	rm.pending[boolIndex(paused)] += bytes
	if time.Since(rm.last) >= ramMeterEvery {
		rm.flush(ctx)
	}
}

// flush reports what add gathered.
func (rm *ramMeter) flush(ctx context.Context) {
	if rm.m == nil {
		return
	}
	for i, n := range rm.pending {
		if n > 0 {
			rm.m.RAMTransferred(ctx, rm.role, i == 1, int64(n))
			rm.pending[i] = 0
		}
	}
	rm.last = time.Now()
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
