package migrate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// HandoffState is one side's record of where a migration's handoff
// stands. The source's record is what the destination asks for when it
// lost the Handoff message, and the destination's what the source asks
// for when it lost the Resumed one; docs/protocol.md §9 has the state
// machine and what each side does at each cut point.
type HandoffState string

// The handoff states.
const (
	// HandoffNone: the migration has not reached the handoff.
	HandoffNone HandoffState = ""
	// HandoffUndecided (source): Finish sent, no Okay yet. The source has
	// not committed and may still abort and resume its VM.
	HandoffUndecided HandoffState = "undecided"
	// HandoffReady (destination): verified, Okay sent; it waits to learn
	// whether the source committed, with the guest paused.
	HandoffReady HandoffState = "ready"
	// HandoffCommitted (source): the source decided to hand off. It never
	// resumes the guest again, and keeps it paused until the destination
	// says it runs it or that it discarded it.
	HandoffCommitted HandoffState = "committed"
	// HandoffResumed (destination): the destination runs the guest.
	HandoffResumed HandoffState = "resumed"
	// HandoffCompleted (source): the destination runs the guest and the
	// source destroyed its copy.
	HandoffCompleted HandoffState = "completed"
	// HandoffAborted: the source runs the guest again (it never committed,
	// or the destination discarded its copy), or the destination discarded
	// its copy.
	HandoffAborted HandoffState = "aborted"
)

// Resolution is an operator's decision for a handoff neither side could
// settle, because the other side is dead or unreachable.
type Resolution string

// The resolutions.
const (
	// ResolveCommit: the guest runs on the destination. On the source it
	// destroys the paused copy; on the destination it resumes its copy.
	ResolveCommit Resolution = "commit"
	// ResolveAbort: the guest runs on the source. On the source it resumes
	// the paused copy; on the destination it discards its copy.
	ResolveAbort Resolution = "abort"
)

// ParseResolution accepts "commit" or "abort".
func ParseResolution(s string) (Resolution, error) {
	switch r := Resolution(s); r {
	case ResolveCommit, ResolveAbort:
		return r, nil
	}
	return "", fmt.Errorf("unknown resolution %q (want commit or abort)", s)
}

// How a side learnt its handoff's outcome when the stream did not tell it
// (model.Side.HandoffSettledBy).
const (
	SettledByPeer     = "peer"
	SettledByOperator = "operator"
)

// Sentinels of the handoff; match with errors.Is.
var (
	// ErrNotPending: a resolution for a side that is not waiting for one.
	ErrNotPending = errors.New("the handoff is not pending")
	// ErrUnknownMigration: the peer has no record of the migration (its
	// server restarted since, so it holds no copy of the guest).
	ErrUnknownMigration = errors.New("unknown migration")
)

// Handoff is one side's handoff record, shared between the side that
// runs the migration, the server that serves it (GET /v1/migrations/ID)
// and an operator who resolves it. Its methods are safe for concurrent
// use.
type Handoff struct {
	mu      sync.Mutex
	state   HandoffState
	pending bool // waiting to learn the outcome without the stream
	decide  chan Resolution
	// closed: a cancel was accepted, so the side never enters the
	// handoff (enter refuses).
	closed bool
	// digest is a source's checksum of its frozen memory for the check
	// after the handoff, kept so a destination whose stream broke can
	// still ask for it (AskPeerDigest).
	digest *MemoryDigest
}

// MemoryDigest is a source's checksum of all guest memory as frozen at
// the pause, over Pages pages: what the destination compares with what it
// received, after the handoff.
type MemoryDigest struct {
	Checksum [32]byte
	Pages    uint64
}

// Digest returns the source's memory digest, once it has one.
func (h *Handoff) Digest() (MemoryDigest, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.digest == nil {
		return MemoryDigest{}, false
	}
	return *h.digest, true
}

func (h *Handoff) setDigest(d MemoryDigest) {
	h.mu.Lock()
	h.digest = &d
	h.mu.Unlock()
}

// NewHandoff returns a record in HandoffNone.
func NewHandoff() *Handoff { return &Handoff{decide: make(chan Resolution, 1)} }

// State returns the side's handoff state and whether it is pending:
// waiting, with the guest paused, to learn from its peer or an operator
// which side runs the guest.
func (h *Handoff) State() (HandoffState, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state, h.pending
}

func (h *Handoff) set(s HandoffState) {
	h.mu.Lock()
	h.state = s
	h.mu.Unlock()
}

// closeGate keeps the side out of the handoff for a cancel, unless it has
// entered it already: ok is false then, with the state it is in.
func (h *Handoff) closeGate() (HandoffState, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != HandoffNone {
		return h.state, false
	}
	h.closed = true
	return h.state, true
}

// enter moves the side into the handoff (HandoffUndecided or
// HandoffReady), unless a cancel closed the gate: the check and the move
// are one step, so a cancel and the handoff never both win.
func (h *Handoff) enter(s HandoffState) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("%w before the handoff", ErrCancelled)
	}
	h.state = s
	return nil
}

func (h *Handoff) setPending(p bool) {
	h.mu.Lock()
	h.pending = p
	h.mu.Unlock()
}

// Resolve settles a pending handoff by an operator's decision. It fails
// with ErrNotPending when the side is not waiting for one.
func (h *Handoff) Resolve(r Resolution) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.pending {
		return fmt.Errorf("%w (state %q)", ErrNotPending, h.state)
	}
	select {
	case h.decide <- r:
		return nil
	default:
		return fmt.Errorf("%w: a resolution is already being applied", ErrNotPending)
	}
}

// AskPeerDigest asks the source's server at addr for its memory digest of
// migration id; ok is false while it has none.
type AskPeerDigest func(ctx context.Context, addr string, id ID) (d MemoryDigest, ok bool, err error)

// AskPeer asks the peer's server at addr for its side's handoff state of
// migration id. It returns ErrUnknownMigration when the peer answers but
// has no record of id; any other error means the peer could not be asked.
type AskPeer func(ctx context.Context, addr string, id ID) (HandoffState, error)

// Backoff of the peer queries of a pending handoff: fast at first, since
// a lost message is usually a dropped connection between live servers,
// then about once a second for as long as the peer cannot be reached.
const (
	handoffPollFirst = 20 * time.Millisecond
	handoffPollMax   = time.Second
)

// awaitOutcome waits, with the guest paused, until the peer's record or an
// operator settles which side runs the guest. verdict maps the peer's
// state to a resolution, or to "" to keep asking.
func (s *side) awaitOutcome(ctx context.Context, peerAddr string, verdict func(HandoffState, error) Resolution) (Resolution, error) {
	h := s.cfg.Handoff
	h.setPending(true)
	defer h.setPending(false)
	s.cfg.Logger.Warn("handoff pending: asking the peer which side runs the guest", "peer", peerAddr)
	wait := handoffPollFirst
	for {
		if s.cfg.AskPeer != nil && peerAddr != "" {
			qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := s.cfg.AskPeer(qctx, peerAddr, s.id)
			cancel()
			if r := verdict(st, err); r != "" {
				s.cfg.Logger.Info("handoff settled by the peer", "peer_state", st, "err", err, "resolution", r)
				s.result.HandoffSettledBy = SettledByPeer
				return r, nil
			}
			if err != nil {
				s.cfg.Logger.Debug("asking the peer about the handoff", "err", err)
			}
		}
		select {
		case r := <-h.decide:
			s.cfg.Logger.Warn("handoff settled by an operator", "resolution", r)
			s.result.HandoffSettledBy = SettledByOperator
			return r, nil
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for the handoff's outcome: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, handoffPollMax)
	}
}
