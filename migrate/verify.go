package migrate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// VerifyMemory is how the destination verifies guest memory against the
// source's, frozen at the pause. docs/protocol.md §5 states what each mode
// detects and when.
type VerifyMemory string

// The verification modes.
const (
	// VerifyFull compares all of memory before the handoff: a page the
	// dirty log missed, or one that arrived corrupt, stops the migration
	// and the guest runs on at the source. Reading all of memory is inside
	// the blackout.
	VerifyFull VerifyMemory = schema.MemoryVerifyFull
	// VerifySampled compares a random sample of SamplePages pages before
	// the handoff, which stops the migration when a fault touches a sampled
	// page, and all of memory after it, which reports any other, too late
	// to undo. A guest of at most SamplePages pages is checked in full.
	VerifySampled VerifyMemory = schema.MemoryVerifySampled
	// VerifyAfter compares all of memory after the handoff only: nothing
	// in the blackout, every difference reported, none prevented.
	VerifyAfter VerifyMemory = schema.MemoryVerifyAfter
	// VerifyOff compares no memory (--skip-memory-checksum).
	VerifyOff VerifyMemory = schema.MemoryVerifyOff

	// DefaultVerifyMemory keeps all of memory out of the blackout while
	// still stopping most faults before the handoff.
	DefaultVerifyMemory = VerifySampled
)

// SamplePages is how many pages VerifySampled compares before the
// handoff: a fixed number, so its cost in the blackout does not grow with
// the guest (about 0.5 ms to hash 4 MiB here, overlapping the post-pause
// push).
const SamplePages = 1024

// ParseVerifyMemory accepts "full", "sampled", "after" or "off".
func ParseVerifyMemory(s string) (VerifyMemory, error) {
	switch v := VerifyMemory(s); v {
	case VerifyFull, VerifySampled, VerifyAfter, VerifyOff:
		return v, nil
	}
	return "", fmt.Errorf("unknown memory verification %q (want full, sampled, after or off)", s)
}

var verifyModes = map[VerifyMemory]wire.VerifyMode{
	VerifyFull: wire.VerifyFull, VerifySampled: wire.VerifySampled,
	VerifyAfter: wire.VerifyAfter, VerifyOff: wire.VerifyOff,
}

func verifyOf(m wire.VerifyMode) VerifyMemory {
	for v, w := range verifyModes {
		if w == m {
			return v
		}
	}
	return ""
}

// late reports whether v compares all of memory after the handoff.
func (v VerifyMemory) late() bool { return verifyModes[v].Late() }

// sourceVerify is the mode a source uses: the configured one where the
// peer's protocol version and the guest allow it. A version-1 peer knows
// no check after the handoff, so it gets the full check before it, never
// less; a sample as large as the guest is the full check.
func sourceVerify(configured VerifyMemory, version int64, pages uint64) VerifyMemory {
	if configured.late() && version < 2 {
		return VerifyFull
	}
	if configured == VerifySampled && pages <= SamplePages {
		return VerifyFull
	}
	return configured
}

// samplePages picks n distinct pages of a guest of pages pages, at random,
// in increasing order. The source draws them after the pause, so nothing
// that wrote the guest's memory could know which pages would be looked at.
func samplePages(pages uint64, n int) []uint64 {
	n = int(min(uint64(n), pages))
	out := make([]uint64, 0, n)
	// Draw, sort, drop repeats, draw again for what they took: with a
	// sample much smaller than the guest, repeats are rare, and this
	// costs a fraction of a set's lookups.
	for len(out) < n {
		for len(out) < n {
			out = append(out, rand.Uint64N(pages))
		}
		slices.Sort(out)
		out = slices.Compact(out)
	}
	return out
}

// sampleHashes hashes the pages of a paused VM.
func sampleHashes(vm vmm.VM, pages []uint64) ([]wire.PageHash, error) {
	out := make([]wire.PageHash, 0, len(pages))
	visitor, direct := vm.(vmm.PageVisitor)
	var buf []byte
	if !direct {
		buf = make([]byte, vmm.PageSize)
	}
	for _, p := range pages {
		var err error
		if direct {
			err = visitor.VisitPages(p, 1, func(_ uint64, data []byte) {
				out = append(out, wire.PageHash{Page: p, Hash: pageHash(data)})
			})
		} else if err = vm.ReadPages(p, buf); err == nil {
			out = append(out, wire.PageHash{Page: p, Hash: pageHash(buf)})
		}
		if err != nil {
			return nil, fmt.Errorf("hashing sampled page %d: %w", p, err)
		}
	}
	return out, nil
}

// checkSample compares the source's sample with the hashes of what the
// destination received; it returns the pages that differ.
func checkSample(samples []wire.PageHash, h pageHashes) ([]uint64, error) {
	var bad []uint64
	for i, s := range samples {
		if s.Page >= uint64(len(h)) || (i > 0 && s.Page <= samples[i-1].Page) {
			return nil, fmt.Errorf("%w: sampled page %d out of order or outside guest memory of %d pages", ErrProtocol, s.Page, len(h))
		}
		if h[s.Page] != s.Hash {
			bad = append(bad, s.Page)
		}
	}
	return bad, nil
}

// pageList names up to a few pages for a message.
func pageList(pages []uint64) string {
	const most = 8
	var b strings.Builder
	for i, p := range pages {
		if i == most {
			fmt.Fprintf(&b, " and %d more", len(pages)-most)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, p)
	}
	return b.String()
}

// memoryDigest is the source's part of a check after the handoff: its
// guest, paused since the pause and never resumed since the commit, still
// holds memory as it was frozen then. It hashes all of it and returns
// what sends the checksum, or, when hashing failed, tells the destination
// why instead.
func (s *source) memoryDigest(ctx context.Context) (send func()) {
	h, err := scanHashes(s.vm, scanWorkers)
	if err != nil {
		s.cfg.Logger.Error("hashing guest memory for the check after the handoff; the destination cannot make it", "err", err)
		return func() {
			_ = s.conn.SendError(ctx, schema.PhaseFinish, fmt.Errorf("hashing guest memory after the handoff: %w", err))
		}
	}
	dig := &wire.MemoryDigest{Checksum: h.sum(), Pages: uint64(len(h))}
	// Kept on the record too, for a destination the stream fails.
	s.cfg.Handoff.setDigest(MemoryDigest{Checksum: dig.Checksum, Pages: dig.Pages})
	return func() {
		if err := s.conn.Send(ctx, dig); err != nil {
			s.cfg.Logger.Error("sending the memory digest for the check after the handoff", "err", err)
		}
	}
}

// lateMetrics counts the checks made after the handoff;
// *tracing.Instruments implements it. It stands apart from Metrics, which
// every migration's metrics implement, because only this check needs it.
type lateMetrics interface {
	MemoryLate(ctx context.Context, result string)
}

// lateAskPatience is how long a destination whose stream failed before
// the memory digest asks the source's record for it: long enough for a
// short partition across the handoff to heal and the source to learn the
// outcome (it asks our record with the same backoff, at most a second
// apart) and hash its copy. The migration's end waits for it, with the
// guest running; a source host that died without a word costs that wait
// too, since nothing tells it from a partition.
const lateAskPatience = 15 * time.Second

// lateWaitPerGiB is how long the destination allows the source per GiB of
// guest memory to hash it after the handoff, beyond the I/O timeout: far
// more than the 0.1 to 0.5 s it takes here.
const lateWaitPerGiB = 8 * time.Second

// verifyLate is the destination's check after the handoff: it compares the
// hashes of all memory as it received it with the source's digest of its
// frozen copy. The guest already runs here, so whatever it finds cannot
// be undone: it records the verdict on the side (the root span's
// attributes), counts it, and logs a mismatch, or a check it could not
// make, at error level. It never fails the migration.
func (d *destination) verifyLate(ctx context.Context, resumed time.Time) {
	late := &model.MemoryLate{}
	d.result.MemoryLate = late
	wait := d.cfg.IOTimeout + time.Duration(float64(lateWaitPerGiB)*float64(d.ram.pages*vmm.PageSize)/(1<<30))
	d.conn.SetIOTimeout(wait)
	dig, err := d.recvDigest(ctx)
	var remote *wire.RemoteError
	if err != nil && !errors.As(err, &remote) {
		// The stream failed, not the source's hashing: its record keeps
		// the digest once it has one.
		d.cfg.Logger.Warn("the memory digest did not come over the stream; asking the source's record", "err", err, "for", lateAskPatience)
		if pd, perr := d.askDigest(ctx, lateAskPatience); perr == nil {
			d.cfg.Logger.Info("took the memory digest from the source's record")
			dig, err = &wire.MemoryDigest{Checksum: pd.Checksum, Pages: pd.Pages}, nil
		} else {
			err = fmt.Errorf("%w; the source's record: %w", err, perr)
		}
	}
	switch {
	case err != nil:
		late.Result, late.Error = schema.MemoryLateUnavailable, err.Error()
	case dig.Pages != d.ram.pages:
		late.Result = schema.MemoryLateUnavailable
		late.Error = fmt.Sprintf("the source's digest covers %d pages, guest memory has %d", dig.Pages, d.ram.pages)
	case dig.Checksum == d.ram.hashes.sum():
		late.Result = schema.MemoryLateMatch
	default:
		late.Result = schema.MemoryLateMismatch
	}
	late.DurationNs = time.Since(resumed).Nanoseconds()
	if m, ok := d.cfg.Metrics.(lateMetrics); ok {
		m.MemoryLate(ctx, late.Result)
	}
	took := time.Duration(late.DurationNs)
	switch late.Result {
	case schema.MemoryLateMatch:
		d.cfg.Logger.Info("guest memory verified after the handoff", "after", took)
	case schema.MemoryLateMismatch:
		d.cfg.Logger.Error("GUEST MEMORY DIFFERS from the source's at pause, found after the handoff: the guest runs here on corrupt memory",
			"id", d.id, "after", took)
	default:
		d.cfg.Logger.Error("guest memory could not be verified after the handoff", "id", d.id, "err", errors.New(late.Error))
	}
}

// recvDigest receives the source's MemoryDigest. A Handoff before it is
// skipped: when it came too late, this side settled the handoff by asking
// the source's record, and the stream may still deliver it.
func (d *destination) recvDigest(ctx context.Context) (*wire.MemoryDigest, error) {
	for {
		dig, err := wire.Expect[*wire.MemoryDigest](ctx, d.conn)
		var unexpected *wire.UnexpectedMessageError
		if errors.As(err, &unexpected) && unexpected.Got == wire.TypeHandoff {
			continue
		}
		return dig, err
	}
}

// askDigest asks the source's record for its memory digest until it has
// one, for up to patience.
func (d *destination) askDigest(ctx context.Context, patience time.Duration) (MemoryDigest, error) {
	if d.cfg.AskPeerDigest == nil || d.cfg.PeerAPI == "" {
		return MemoryDigest{}, errors.New("not asked: the source's API is not known")
	}
	ctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	wait := handoffPollFirst
	var last error
	for {
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		dig, ok, err := d.cfg.AskPeerDigest(qctx, d.cfg.PeerAPI, d.id)
		qcancel()
		switch {
		case err == nil && ok:
			return dig, nil
		case err == nil:
			last = errors.New("it holds no digest")
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, ErrUnknownMigration):
			// The source's server is gone, or restarted without the
			// record: no digest will ever be there. A partition, by
			// contrast, only times out, and may heal.
			return MemoryDigest{}, err
		default:
			last = err
		}
		select {
		case <-ctx.Done():
			return MemoryDigest{}, fmt.Errorf("no digest within %v: %w", patience, last)
		case <-time.After(wait):
		}
		wait = min(2*wait, handoffPollMax)
	}
}
