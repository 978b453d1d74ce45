package server

import (
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
	if req.Source == "" {
		writeError(w, http.StatusBadRequest, errors.New(`request body: "source" is empty; want {"source": "HOST:PORT"}`))
		return
	}
	if _, _, err := net.SplitHostPort(req.Source); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("source %q: want HOST:PORT: %w", req.Source, err))
		return
	}
	id, err := s.StartMigration(req.Source)
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
	s.mu.Lock()
	if s.vm == nil || s.state != StateRunning {
		state := s.state
		s.mu.Unlock()
		cause := ErrNoVM
		if state != StateWaiting && state != StateFailed && state != StateMigrated {
			cause = ErrBusy
		}
		writeError(w, http.StatusConflict, fmt.Errorf("%w: instance is %s", cause, state))
		return
	}
	vm := s.vm
	s.state = StateMigratingOut
	s.mig, s.migErr = &MigrationStatus{ID: id.String(), Role: schema.RoleSource.String(), Peer: r.RemoteAddr, Result: ResultRunning}, nil
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	nc, err := wire.Upgrade(w, r)
	if err != nil {
		s.mu.Lock()
		s.state = StateRunning
		s.finishStatus(nil, err)
		s.mu.Unlock()
		return
	}
	// Join the destination's trace.
	q := r.URL.Query()
	ctx := tracing.Extract(s.baseCtx, q.Get(tracing.HeaderTraceparent), q.Get(tracing.HeaderTracestate))
	s.mu.Lock()
	cfg := s.migrationConfig(id, schema.RoleSource, "")
	s.mu.Unlock()
	res, err := migrate.RunSource(ctx, nc, vm, id, cfg)
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
		s.log.Error("migration out failed; the VM runs on here", "id", id, "err", err)
		return
	}
	s.state, s.vm = StateMigrated, nil
	s.log.Info("migrated out", "id", id, "downtime", time.Duration(res.DowntimeNs))
}
