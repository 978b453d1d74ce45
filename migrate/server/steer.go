package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Steering a running migration: POST HandoffPath+ID+"/cancel" and
// PATCH (or POST) HandoffPath+ID+"/settings". Either server of a
// migration takes both; each tells the other (docs/protocol.md §10).

// SettingsHeader is the header of the source's 101 answer that tells the
// destination the settings it runs the migration with, as URL query
// parameters under the schema.Setting* names (migrate.Settings.Query).
const SettingsHeader = "Migtrace-Settings"

// PeerAPIParam is the upgrade request's query parameter that gives the
// source the destination's API address, which it asks, and forwards
// cancels to, before ServerState tells it.
const PeerAPIParam = "peer_api"

// CancelRequest is the body of POST /v1/migrations/ID/cancel; an empty
// body is one too.
type CancelRequest struct {
	// By names the client ("cli" from migtrace); the server records it
	// with its own name and the client's address.
	By string `json:"by,omitempty"`
	// Forwarded marks a cancel one server of the migration passes to the
	// other: By is then recorded as given, and not passed back.
	Forwarded bool `json:"forwarded,omitempty"`
}

// CancelResponse answers an accepted cancel (202): the migration ends
// shortly, as GET /v1/instance then shows.
type CancelResponse struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	// By is who the migration records as having cancelled it.
	By string `json:"cancelled_by"`
	// Phase is the phase it was in when the cancel was accepted.
	Phase string `json:"phase,omitempty"`
	// Peer says whether the other server took the cancel too: "" when it
	// was not asked (a forwarded cancel), else what it answered.
	Peer string `json:"peer,omitempty"`
}

// SettingsRequest is the body of PATCH /v1/migrations/ID/settings: the
// settings to change (migrate.Settings' keys; clock_skew_correction and
// skip_memory_checksum cannot change in flight), and who asks, as in
// CancelRequest.
type SettingsRequest struct {
	migrate.Settings
	By        string `json:"by,omitempty"`
	Forwarded bool   `json:"forwarded,omitempty"`
	// Changes, from a source to its destination, are changes the source
	// made, for the destination to record as they are.
	Changes []model.SettingChange `json:"changes,omitempty"`
}

// SettingsResponse answers a settings change: the changes made (none
// when every value was already so) and the settings now in force.
type SettingsResponse struct {
	ID       string                `json:"id"`
	Changes  []model.SettingChange `json:"changes"`
	Settings model.Settings        `json:"settings"`
}

// requester is who made an API request: the server, and its client as
// the client named itself and as the server saw it.
func (s *Server) requester(r *http.Request, by string) string {
	client := r.RemoteAddr
	if by != "" {
		client = by + " at " + r.RemoteAddr
	}
	return fmt.Sprintf("%s (%s) for %s", s.cfg.Name, s.cfg.Address, client)
}

// steered returns migration id's record on this server.
func (s *Server) steered(id string) (handoffEntry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.handoffs[id]
	return e, ok
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req CancelRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
	}
	by := req.By
	if !req.Forwarded {
		by = s.requester(r, req.By)
	}
	resp, err := s.Cancel(r.Context(), id, by, !req.Forwarded)
	if err != nil {
		writeError(w, steerStatus(err), err)
		return
	}
	writeJSON(w, http.StatusAccepted, resp)
}

// steerStatus is the HTTP status of a refused cancel or change.
func steerStatus(err error) int {
	var apiErr *APIError
	switch {
	case errors.Is(err, migrate.ErrUnknownMigration):
		return http.StatusNotFound
	case errors.Is(err, migrate.ErrInvalidSettings):
		return http.StatusBadRequest
	case errors.Is(err, migrate.ErrTooLate), errors.Is(err, migrate.ErrNotRunning):
		return http.StatusConflict
	case errors.As(err, &apiErr):
		if apiErr.StatusCode/100 == 4 {
			return apiErr.StatusCode // the source's own refusal
		}
		return http.StatusBadGateway
	}
	return http.StatusBadGateway
}

// Cancel cancels migration id on behalf of by, at once, then tells the
// peer's server, if tell and it knows it, so that both sides record a
// cancellation rather than a broken stream (a peer whose stream breaks
// first asks this server, which has the record by then). The peer
// refusing or not answering changes nothing: this side alone ending the
// migration before the handoff is always safe.
func (s *Server) Cancel(ctx context.Context, id, by string, tell bool) (CancelResponse, error) {
	e, ok := s.steered(id)
	if !ok {
		return CancelResponse{}, fmt.Errorf("%w %q", migrate.ErrUnknownMigration, id)
	}
	commit, err := e.ctl.BeginCancel(by)
	if err != nil {
		return CancelResponse{}, fmt.Errorf("cancelling migration %s: %w", id, err)
	}
	// Cancels asked of both servers at once must leave both naming the
	// same one: the source's record stands, first come first served, and
	// a destination adopts it (from its source's forward, its answer to
	// ours, or by asking as its side ends).
	if !tell && e.role == schema.RoleDestination {
		e.ctl.AdoptCancelledBy(by)
	}
	recorded, _ := e.ctl.CancelledBy()
	resp := CancelResponse{ID: id, Role: e.role.String(), Phase: s.migrationPhase(id)}
	commit()
	if tell {
		var peerBy string
		resp.Peer, peerBy = s.tellPeer(ctx, id, recorded)
		if e.role == schema.RoleDestination {
			e.ctl.AdoptCancelledBy(peerBy)
		}
	}
	resp.By, _ = e.ctl.CancelledBy()
	s.log.Warn("migration cancelled", "id", id, "role", e.role, "by", recorded, "phase", resp.Phase, "peer", resp.Peer)
	return resp, nil
}

// migrationPhase is the phase migration id is in, if it is this server's
// current one.
func (s *Server) migrationPhase(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mig != nil && s.mig.ID == id {
		return s.mig.Phase
	}
	return ""
}

// peerTimeout bounds each request one server of a migration makes of the
// other's API.
const peerTimeout = 2 * time.Second

// peerClient talks to the API of a migration's peer server at addr.
func (s *Server) peerClient(addr string) *Client {
	hc := &http.Client{Timeout: peerTimeout}
	if s.cfg.ClientTLS != nil {
		hc.Transport = &http.Transport{TLSClientConfig: s.cfg.ClientTLS}
	}
	return NewClient(addr, hc, s.cfg.ClientTLS != nil)
}

// tellPeer forwards a cancel to migration id's peer and says how it
// answered, and whom the peer records as having cancelled it.
func (s *Server) tellPeer(ctx context.Context, id, by string) (answer, peerBy string) {
	s.mu.Lock()
	addr := s.peerAPI[id]
	s.mu.Unlock()
	if addr == "" {
		return "not told: its address is not known", ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), peerTimeout)
	defer cancel()
	resp, err := s.peerClient(addr).Cancel(ctx, id, CancelRequest{By: by, Forwarded: true})
	if err != nil {
		s.log.Warn("telling the peer of a cancel; it will see the stream end", "id", id, "peer", addr, "err", err)
		return "not told: " + err.Error(), ""
	}
	return "cancelled at " + addr, resp.By
}

// askPeerCancelled implements migrate.Config.AskPeerCancelled over the
// peer server's API.
func (s *Server) askPeerCancelled(ctx context.Context, addr string, id migrate.ID) (string, error) {
	st, err := s.peerClient(addr).Handoff(ctx, id.String())
	return st.CancelledBy, err
}

func (s *Server) handleSettings(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var req SettingsRequest
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	if len(req.Changes) > 0 {
		resp, err := s.recordPeerChanges(id, req)
		if err != nil {
			writeError(w, steerStatus(err), err)
			return
		}
		writeJSON(w, http.StatusOK, resp)
		return
	}
	by := req.By
	if !req.Forwarded {
		by = s.requester(r, req.By)
	}
	resp, err := s.UpdateSettings(r.Context(), id, req.Settings, by, req.Forwarded)
	if err != nil {
		writeError(w, steerStatus(err), err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// UpdateSettings changes migration id's settings on behalf of by. The
// source, which does the sending, applies them; a destination forwards
// the change to its source (unless forwarded: it came from there) and
// records what the source made of it. An invalid change, or one the
// source refuses or cannot be asked, changes nothing.
func (s *Server) UpdateSettings(ctx context.Context, id string, st migrate.Settings, by string, forwarded bool) (SettingsResponse, error) {
	e, ok := s.steered(id)
	if !ok {
		return SettingsResponse{}, fmt.Errorf("%w %q", migrate.ErrUnknownMigration, id)
	}
	if err := st.ValidateInFlight(); err != nil {
		return SettingsResponse{}, err
	}
	resp := SettingsResponse{ID: id}
	if e.role == schema.RoleSource {
		changes, err := e.ctl.Update(st, by)
		if err != nil {
			return SettingsResponse{}, fmt.Errorf("changing migration %s's settings: %w", id, err)
		}
		resp.Changes, resp.Settings = changes, e.ctl.Settings()
		s.log.Info("migration settings changed", "id", id, "role", e.role, "by", by, "changes", len(changes))
		if !forwarded && len(changes) > 0 {
			s.tellPeerChanges(ctx, id, changes)
		}
		return resp, nil
	}
	if forwarded {
		return SettingsResponse{}, fmt.Errorf("%w: a destination applies no settings itself; send the change to it, or to its source", migrate.ErrInvalidSettings)
	}
	// One change at a time through here, so that this side records them
	// in the order the source made them.
	e.fwd.Lock()
	defer e.fwd.Unlock()
	s.mu.Lock()
	addr := s.peerAPI[id]
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), peerTimeout)
	defer cancel()
	got, err := s.peerClient(addr).UpdateSettings(ctx, id, SettingsRequest{Settings: st, By: by, Forwarded: true})
	if err != nil {
		return SettingsResponse{}, fmt.Errorf("the source %s applies a migration's settings, and did not: %w", addr, err)
	}
	if err := e.ctl.Record(got.Changes); err != nil {
		// The source changed them but this side has ended; its own
		// record holds the change.
		s.log.Warn("recording a settings change the source made", "id", id, "err", err)
	}
	resp.Changes, resp.Settings = got.Changes, got.Settings
	return resp, nil
}

// tellPeerChanges passes changes a source made at an operator's request
// to its destination, so that the destination's trace records them too;
// a destination that cannot be told only misses them in its own record.
func (s *Server) tellPeerChanges(ctx context.Context, id string, changes []model.SettingChange) {
	s.mu.Lock()
	addr := s.peerAPI[id]
	s.mu.Unlock()
	if addr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), peerTimeout)
	defer cancel()
	if _, err := s.peerClient(addr).UpdateSettings(ctx, id, SettingsRequest{Forwarded: true, Changes: changes}); err != nil {
		s.log.Warn("telling the destination of a settings change", "id", id, "peer", addr, "err", err)
	}
}

// recordPeerChanges records, on a destination, changes its source made.
func (s *Server) recordPeerChanges(id string, req SettingsRequest) (SettingsResponse, error) {
	e, ok := s.steered(id)
	if !ok {
		return SettingsResponse{}, fmt.Errorf("%w %q", migrate.ErrUnknownMigration, id)
	}
	if e.role != schema.RoleDestination || !req.Forwarded || !req.Settings.IsZero() {
		return SettingsResponse{}, fmt.Errorf("%w: only a migration's source passes its changes to its destination, and with nothing else", migrate.ErrInvalidSettings)
	}
	if err := e.ctl.Record(req.Changes); err != nil {
		return SettingsResponse{}, fmt.Errorf("recording migration %s's settings changes: %w", id, err)
	}
	return SettingsResponse{ID: id, Changes: req.Changes, Settings: e.ctl.Settings()}, nil
}

// Cancel asks the server to cancel migration id.
func (c *Client) Cancel(ctx context.Context, id string, req CancelRequest) (CancelResponse, error) {
	var resp CancelResponse
	err := c.Do(ctx, http.MethodPost, HandoffPath+id+"/cancel", req, &resp)
	return resp, err
}

// UpdateSettings asks the server to change migration id's settings.
func (c *Client) UpdateSettings(ctx context.Context, id string, req SettingsRequest) (SettingsResponse, error) {
	var resp SettingsResponse
	err := c.Do(ctx, http.MethodPatch, HandoffPath+id+"/settings", req, &resp)
	return resp, err
}

// settingsHeader encodes st for SettingsHeader.
func settingsHeader(st model.Settings) string {
	q := url.Values{}
	migrate.Full(st).Query(q)
	return q.Encode()
}

// parseSettingsHeader reads SettingsHeader; ok is false when it is
// absent or incomplete (a source that predates it).
func parseSettingsHeader(v string) (model.Settings, bool) {
	if v == "" {
		return model.Settings{}, false
	}
	q, err := url.ParseQuery(v)
	if err != nil {
		return model.Settings{}, false
	}
	st, err := migrate.ParseSettingsQuery(q)
	if err != nil || st.MaxBandwidth == nil || st.DowntimeTargetNs == nil || st.MaxRounds == nil ||
		st.AutoConverge == nil || st.SkipMemoryChecksum == nil {
		return model.Settings{}, false
	}
	return st.Apply(model.Settings{}), true
}

// describeSettings is st for a log line.
func describeSettings(st model.Settings) string {
	var b strings.Builder
	for i, name := range []string{schema.SettingMaxBandwidth, schema.SettingDowntimeTarget, schema.SettingMaxRounds,
		schema.SettingAutoConverge, schema.SettingClockSkewCorrection, schema.SettingSkipMemoryChecksum} {
		v, _ := st.Value(name)
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name + " " + model.FormatSetting(name, v))
	}
	return b.String()
}
