package server

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/tracing/schema"
)

// HandoffPath is the handoff record of one migration:
// GET HandoffPath+ID is a HandoffStatus; POST HandoffPath+ID+"/resolve"
// with a ResolveRequest settles a pending handoff.
const HandoffPath = "/v1/migrations/"

// HandoffStatus is the body of GET /v1/migrations/ID: this server's side
// of that migration's handoff (docs/protocol.md §9).
type HandoffStatus struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	// State is a migrate.HandoffState; "" before the handoff.
	State migrate.HandoffState `json:"state"`
	// Pending: the side holds the paused guest and waits to learn from
	// its peer, or from an operator, which side runs it.
	Pending bool `json:"pending"`
	// CancelledBy is who cancelled the migration here, once a cancel was
	// accepted: a peer whose stream broke asks for it.
	CancelledBy string `json:"cancelled_by,omitempty"`
	// MemoryDigest (hex) and MemoryPages are a source's checksum of its
	// guest memory as frozen at the pause, once it has hashed it for the
	// check after the handoff: a destination whose stream broke before
	// the digest came asks for it here.
	MemoryDigest string `json:"memory_digest,omitempty"`
	MemoryPages  uint64 `json:"memory_pages,omitempty"`
}

// ResolveRequest is the body of POST /v1/migrations/ID/resolve.
type ResolveRequest struct {
	// Action is "commit" (the guest runs on the destination) or "abort"
	// (it runs on the source).
	Action string `json:"action"`
}

// handoffEntry is one migration's handoff record on this server. Records
// are kept for the server's lifetime (a few hundred bytes each), so a
// peer can always learn how a migration it took part in ended.
type handoffEntry struct {
	role schema.Role
	h    *migrate.Handoff
	// ctl cancels the migration or changes its settings; fwd orders the
	// changes a destination forwards to its source.
	ctl *migrate.Control
	fwd *sync.Mutex
}

// track registers migration id's handoff record and control; s.mu must
// be held.
func (s *Server) track(id migrate.ID, role schema.Role) handoffEntry {
	if s.handoffs == nil {
		s.handoffs = make(map[string]handoffEntry)
	}
	e := handoffEntry{role: role, h: migrate.NewHandoff(), ctl: migrate.NewControl(), fwd: new(sync.Mutex)}
	s.handoffs[id.String()] = e
	return e
}

// handoff returns this server's side of migration id's handoff.
func (s *Server) handoff(id string) (HandoffStatus, *migrate.Handoff, bool) {
	s.mu.Lock()
	e, ok := s.handoffs[id]
	s.mu.Unlock()
	if !ok {
		return HandoffStatus{}, nil, false
	}
	st, pending := e.h.State()
	by, _ := e.ctl.CancelledBy()
	hs := HandoffStatus{ID: id, Role: e.role.String(), State: st, Pending: pending, CancelledBy: by}
	if d, ok := e.h.Digest(); ok {
		hs.MemoryDigest, hs.MemoryPages = hex.EncodeToString(d.Checksum[:]), d.Pages
	}
	return hs, e.h, true
}

func (s *Server) handleHandoff(w http.ResponseWriter, r *http.Request) {
	st, _, ok := s.handoff(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w %q", migrate.ErrUnknownMigration, r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleResolve settles a pending handoff by an operator's decision. It
// refuses one that the peer's own record contradicts, when the peer can
// be asked: an operator may settle what cannot be learnt, never overrule
// what can.
func (s *Server) handleResolve(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req ResolveRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	res, err := migrate.ParseResolution(req.Action)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	st, h, ok := s.handoff(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w %q", migrate.ErrUnknownMigration, id))
		return
	}
	if !st.Pending {
		writeError(w, http.StatusConflict, fmt.Errorf("%w: migration %s is %q on this %s", migrate.ErrNotPending, id, st.State, st.Role))
		return
	}
	if peer, addr, err := s.askPeerOf(r.Context(), id); err == nil {
		if conflict := resolutionConflicts(st.Role, res, peer); conflict != "" {
			writeError(w, http.StatusConflict, fmt.Errorf("refusing to %s: the peer at %s says %s", res, addr, conflict))
			return
		}
	}
	if err := h.Resolve(res); err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	s.log.Warn("handoff resolved by an operator", "id", id, "resolution", res)
	writeJSON(w, http.StatusOK, st)
}

// resolutionConflicts says why resolution res on our side (of role) would
// contradict the peer's record, or "".
func resolutionConflicts(role string, res migrate.Resolution, peer migrate.HandoffState) string {
	switch {
	case role == schema.RoleSource.String() && res == migrate.ResolveAbort && peer == migrate.HandoffResumed:
		return "it runs the guest"
	case role == schema.RoleSource.String() && res == migrate.ResolveCommit && peer == migrate.HandoffAborted:
		return "it discarded its copy"
	case role == schema.RoleDestination.String() && res == migrate.ResolveCommit && peer == migrate.HandoffAborted:
		return "it runs the guest"
	case role == schema.RoleDestination.String() && res == migrate.ResolveAbort &&
		(peer == migrate.HandoffCommitted || peer == migrate.HandoffCompleted):
		return "it committed the handoff and will not resume the guest"
	}
	return ""
}

// askPeerOf asks the peer of migration id for its handoff state.
func (s *Server) askPeerOf(ctx context.Context, id string) (migrate.HandoffState, string, error) {
	s.mu.Lock()
	addr := s.peerAPI[id]
	s.mu.Unlock()
	if addr == "" {
		return "", "", errors.New("the peer's address is not known")
	}
	mid, err := migrate.ParseID(id)
	if err != nil {
		return "", addr, err
	}
	st, err := s.askPeer(ctx, addr, mid)
	return st, addr, err
}

// askPeer implements migrate.AskPeer over the peer server's API.
func (s *Server) askPeer(ctx context.Context, addr string, id migrate.ID) (migrate.HandoffState, error) {
	st, err := s.peerClient(addr).Handoff(ctx, id.String())
	return st.State, err
}

// askPeerDigest implements migrate.AskPeerDigest over the source
// server's API.
func (s *Server) askPeerDigest(ctx context.Context, addr string, id migrate.ID) (migrate.MemoryDigest, bool, error) {
	st, err := s.peerClient(addr).Handoff(ctx, id.String())
	if err != nil || st.MemoryDigest == "" {
		return migrate.MemoryDigest{}, false, err
	}
	var d migrate.MemoryDigest
	if len(st.MemoryDigest) != hex.EncodedLen(len(d.Checksum)) {
		return migrate.MemoryDigest{}, false, fmt.Errorf("the source's record at %s: memory digest of %d characters, want %d hex", addr, len(st.MemoryDigest), hex.EncodedLen(len(d.Checksum)))
	}
	if _, err := hex.Decode(d.Checksum[:], []byte(st.MemoryDigest)); err != nil {
		return migrate.MemoryDigest{}, false, fmt.Errorf("the source's record at %s: memory digest %q is not %d hex bytes", addr, st.MemoryDigest, len(d.Checksum))
	}
	d.Pages = st.MemoryPages
	return d, true, nil
}

// decodeJSON decodes one JSON object from r's body, refusing anything
// after it.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding the request body: %w", err)
	}
	if dec.More() {
		return errors.New("decoding the request body: data after the JSON object")
	}
	return nil
}
