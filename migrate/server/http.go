package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/schema"
)

// maxRequestBody bounds POST bodies; a migrate request is a few bytes.
const maxRequestBody = 64 << 10

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, ErrorResponse{Error: err.Error()})
}

func (s *Server) handleInstance(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Status())
}

func (s *Server) handleMigrate(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err))
		return
	}
	var req MigrateRequest
	dec := json.NewDecoder(bytesReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf(`request body: want {"source": "HOST:PORT"}: %w`, err))
		return
	}
	// One object and nothing after it: trailing data means the client
	// sent something other than what was decoded.
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		writeError(w, http.StatusBadRequest, fmt.Errorf(`request body: data after the JSON object, which ends at byte %d; want only {"source": "HOST:PORT"}`, end))
		return
	}
	if req.Source == "" {
		writeError(w, http.StatusBadRequest, errors.New(`request body: "source" is empty; want {"source": "HOST:PORT"}`))
		return
	}
	if _, _, err := net.SplitHostPort(req.Source); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("source %q: want HOST:PORT: %w", req.Source, err))
		return
	}
	id, err := s.Start(req)
	if errors.Is(err, migrate.ErrInvalidSettings) {
		writeError(w, http.StatusBadRequest, fmt.Errorf(`request body: "settings": %w`, err))
		return
	}
	if err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	writeJSON(w, http.StatusAccepted, MigrateResponse{ID: id.String()})
}

// handleStream is the source side: a destination dialled in to pull the VM.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	id, err := migrate.ParseID(r.URL.Query().Get("id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	q := r.URL.Query()
	// The destination's choice of settings for this migration, over this
	// server's flags; refused whole, before anything starts, if invalid.
	settings, err := migrate.ParseSettingsQuery(q)
	if err == nil {
		err = settings.Validate()
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("migration stream settings: %w", err))
		return
	}
	peerAPI := q.Get(PeerAPIParam)
	if peerAPI != "" {
		if _, _, err := net.SplitHostPort(peerAPI); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("%s %q: want HOST:PORT: %w", PeerAPIParam, peerAPI, err))
			return
		}
	}
	mcfg := s.cfg.Migration
	settings.ApplyTo(&mcfg)
	s.mu.Lock()
	err = s.canMigrateOut(id)
	s.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusConflict, err)
		return
	}
	nc, err := wire.UpgradeHeader(w, r, http.Header{SettingsHeader: {settingsHeader(withDefaults(mcfg).Settings())}})
	if err != nil {
		s.log.Warn("migration stream request refused", "peer", r.RemoteAddr, "id", id, "err", err)
		return
	}
	// Only a peer that completes the handshake claims the VM, so one that
	// never speaks holds nothing a real migration needs, and is dropped at
	// the deadline without a trace in the instance's record.
	hctx, cancel := context.WithTimeout(s.baseCtx, s.handshakeTimeout())
	stream, err := migrate.Accept(hctx, nc, mcfg)
	cancel()
	if err != nil {
		s.log.Warn("migration stream dropped at the handshake", "peer", r.RemoteAddr, "id", id, "err", err)
		return
	}
	s.mu.Lock()
	err = s.canMigrateOut(id)
	if err != nil {
		s.mu.Unlock()
		// Another stream claimed the VM while this one shook hands.
		ctx, cancel := context.WithTimeout(s.baseCtx, 2*time.Second)
		stream.Refuse(ctx, err)
		cancel()
		return
	}
	vm := s.vm
	s.state = StateMigratingOut
	s.mig, s.migErr = &MigrationStatus{ID: id.String(), Role: schema.RoleSource.String(), Peer: r.RemoteAddr, Result: ResultRunning}, nil
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	// Join the destination's trace.
	ctx := tracing.Extract(s.baseCtx, q.Get(tracing.HeaderTraceparent), q.Get(tracing.HeaderTracestate))
	s.mu.Lock()
	cfg := s.migrationConfig(mcfg, id, schema.RoleSource, peerAPI)
	s.mu.Unlock()
	res, err := migrate.RunSourceStream(ctx, stream, vm, id, cfg)
	s.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishStatus(res, err)
	if st, _ := cfg.Handoff.State(); err != nil && st == migrate.HandoffCommitted {
		// Committed, and neither the destination nor an operator said
		// which side runs the guest (the server is shutting down): it
		// stays here, paused, never resumed on our own.
		s.state = StatePaused
		s.log.Error("migration out: outcome unknown after the commit; the VM stays paused here", "id", id, "err", err)
		return
	}
	if err != nil {
		s.state = StateRunning
		if res != nil && res.Cancelled() {
			s.log.Warn("migration out cancelled; the VM runs on here", "id", id, "by", res.CancelledBy)
			return
		}
		s.log.Error("migration out failed; the VM runs on here", "id", id, "err", err)
		return
	}
	s.state, s.vm = StateMigrated, nil
	s.log.Info("migrated out", "id", id, "downtime", time.Duration(res.DowntimeNs))
}

// canMigrateOut says why migration id cannot take the VM out now, or nil;
// s.mu must be held.
func (s *Server) canMigrateOut(id migrate.ID) error {
	if s.baseCtx.Err() != nil {
		return fmt.Errorf("%w: the server is shutting down", ErrBusy)
	}
	if s.vm == nil || s.state != StateRunning {
		cause := ErrNoVM
		if s.state != StateWaiting && s.state != StateFailed && s.state != StateMigrated {
			cause = ErrBusy
		}
		return fmt.Errorf("%w: instance is %s", cause, s.state)
	}
	// A replayed id would overwrite the record of the migration it names.
	if s.mig != nil && s.mig.ID == id.String() {
		return fmt.Errorf("%w: migration %s already ran here; a new migration needs a new id", ErrBusy, id)
	}
	return nil
}

// withDefaults is c with the defaults a migration fills in, so that the
// settings the source announces are the ones it runs with.
func withDefaults(c migrate.Config) migrate.Config {
	if c.DowntimeTarget <= 0 {
		c.DowntimeTarget = migrate.DefaultDowntimeTarget
	}
	if c.MaxRounds <= 0 {
		c.MaxRounds = migrate.DefaultMaxRounds
	}
	return c
}
