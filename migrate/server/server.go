package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// The API's paths.
const (
	InstancePath = "/v1/instance"       // GET: InstanceStatus
	MigratePath  = "/v1/migrate"        // POST MigrateRequest: MigrateResponse
	StreamPath   = "/v1/migrate/stream" // GET, upgraded: a destination pulls the VM
)

// Sentinels; match with errors.Is.
var (
	// ErrBusy: the server is migrating or in a state that does not allow
	// the request (HTTP 409).
	ErrBusy = errors.New("instance busy")
	// ErrNoVM: the server hosts no VM to migrate out (HTTP 409).
	ErrNoVM = errors.New("no VM to migrate")
)

// Config configures a Server.
type Config struct {
	// Name is the instance's name.
	Name string
	// Address is the address peers reach this server at (its --listen).
	Address string
	// Backend builds VMs: the one booted here, or one migrating in.
	Backend vmm.Backend
	// Boot starts a fresh VM of spec Spec at New; otherwise the server
	// waits for a VM to migrate in.
	Boot bool
	Spec vmm.Spec
	// ServerTLS, if set, serves HTTPS (the migration stream included);
	// ClientTLS is used when dialling a source.
	ServerTLS, ClientTLS *tls.Config
	// Migration tunes migrations; its Name, Address, Tracer, Metrics and
	// Progress fields are filled in by the server.
	Migration migrate.Config
	// Tracer and Metrics receive the migrations' spans and metrics.
	Tracer  trace.Tracer
	Metrics migrate.Metrics
	// MetricsHandler serves GET /metrics; nil answers 404.
	MetricsHandler http.Handler
	// ReadTimeout bounds reading a request, body included; WriteTimeout
	// writing its answer; IdleTimeout how long a kept-alive connection may
	// wait for its next request. 0 means DefaultReadTimeout and so on. A
	// migration stream is not bound by them: its upgrade clears the
	// connection's deadlines, and from then on the migration's I/O timeout
	// bounds each read and write.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// HandshakeTimeout bounds how long a migration stream may take to
	// complete the version handshake before it is dropped; 0 means
	// migrate.DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Flush, if set, runs after each migration so its spans are exported
	// before anyone asks for them.
	Flush  func(context.Context) error
	Logger *slog.Logger
}

// The HTTP server's timeouts when Config leaves them 0. Requests are a
// few hundred bytes and answers a few KiB, so these are generous; they
// only exist to drop peers that hold connections without using them.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
)

// Server hosts one VM.
type Server struct {
	cfg     Config
	log     *slog.Logger
	baseCtx context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu    sync.Mutex
	state State
	vm    vmm.VM
	mig   *MigrationStatus
	// migErr is mig's failure as an error value, for MigrateFrom's
	// callers to match with errors.Is/As; mig.Error is its text.
	migErr error
	// handoffs holds every migration's handoff record by id, and peerAPI
	// the API address of each one's peer.
	handoffs map[string]handoffEntry
	peerAPI  map[string]string
}

// New creates a server and, with cfg.Boot, boots its VM.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("server: no VM backend")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{cfg: cfg, log: cfg.Logger, baseCtx: base, cancel: cancel, state: StateWaiting}
	if cfg.Boot {
		vm, err := cfg.Backend.New(cfg.Spec)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("creating the VM: %w", err)
		}
		if err := vm.Boot(ctx); err != nil {
			_ = vm.Destroy()
			cancel()
			return nil, fmt.Errorf("booting the VM: %w", err)
		}
		s.vm, s.state = vm, StateRunning
	}
	return s, nil
}

// Handler returns the server's HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+InstancePath, s.handleInstance)
	mux.HandleFunc("POST "+MigratePath, s.handleMigrate)
	mux.HandleFunc("GET "+StreamPath, s.handleStream)
	mux.HandleFunc("GET "+HandoffPath+"{id}", s.handleHandoff)
	mux.HandleFunc("POST "+HandoffPath+"{id}/resolve", s.handleResolve)
	mux.HandleFunc("POST "+HandoffPath+"{id}/cancel", s.handleCancel)
	mux.HandleFunc("PATCH "+HandoffPath+"{id}/settings", s.handleSettings)
	mux.HandleFunc("POST "+HandoffPath+"{id}/settings", s.handleSettings)
	if s.cfg.MetricsHandler != nil {
		mux.Handle("GET /metrics", s.cfg.MetricsHandler)
	}
	return mux
}

// Serve serves the API on ln until ctx ends, then shuts down gracefully
// (in-flight migrations are cancelled; a source VM not yet handed off
// resumes).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.ServerTLS != nil {
		ln = tls.NewListener(ln, s.cfg.ServerTLS)
	}
	orDefault := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	read := orDefault(s.cfg.ReadTimeout, DefaultReadTimeout)
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: min(DefaultReadHeaderTimeout, read),
		ReadTimeout:       read,
		WriteTimeout:      orDefault(s.cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       orDefault(s.cfg.IdleTimeout, DefaultIdleTimeout),
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(shutdownCtx)
	s.Close()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

func (s *Server) handshakeTimeout() time.Duration {
	if s.cfg.HandshakeTimeout > 0 {
		return s.cfg.HandshakeTimeout
	}
	return migrate.DefaultHandshakeTimeout
}

// Close cancels migrations in flight, waits for them to unwind and
// destroys the VM.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vm != nil {
		_ = s.vm.Destroy()
		s.vm = nil
	}
}

// Status returns what GET /v1/instance reports.
func (s *Server) Status() InstanceStatus {
	s.mu.Lock()
	st := InstanceStatus{Name: s.cfg.Name, State: s.state, Backend: s.cfg.Backend.Name(), Address: s.cfg.Address}
	vm := s.vm
	if s.mig != nil {
		m := *s.mig
		if m.Progress != nil {
			p := *m.Progress
			m.Progress = &p
		}
		if e, ok := s.handoffs[m.ID]; ok {
			var pending bool
			m.Handoff, pending = e.h.State()
			if pending {
				st.State = StateHandoffPending
			}
			if by, ok := e.ctl.CancelledBy(); ok {
				m.CancelledBy = by
			}
			if m.Result == ResultRunning && e.ctl.Running() {
				cur := e.ctl.Settings()
				m.Settings = &cur
			}
		}
		st.Migration = &m
	}
	s.mu.Unlock()
	if vm != nil {
		st.MemoryBytes = vm.Spec().MemoryBytes
		if vm.State() != vmm.StateDestroyed {
			if td, err := vm.ReadTimeData(context.Background()); err == nil {
				st.GuestTSC = td.GuestTSC
			}
		}
	}
	return st
}

// VM returns the hosted VM, or nil.
func (s *Server) VM() vmm.VM {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vm
}

// migrationConfig is the configuration of migration id, in which this
// server plays role, from c (its Migration config with the migration's
// own settings); peerAPI is the peer's API address, when known. s.mu
// must be held.
func (s *Server) migrationConfig(c migrate.Config, id migrate.ID, role schema.Role, peerAPI string) migrate.Config {
	c.Name, c.Address = s.cfg.Name, s.cfg.Address
	c.Tracer, c.Metrics, c.Logger = s.cfg.Tracer, s.cfg.Metrics, s.log
	e := s.track(id, role)
	c.Handoff, c.Control, c.AskPeer, c.PeerAPI = e.h, e.ctl, s.askPeer, peerAPI
	c.AskPeerCancelled, c.AskPeerDigest = s.askPeerCancelled, s.askPeerDigest
	if s.peerAPI == nil {
		s.peerAPI = make(map[string]string)
	}
	s.peerAPI[id.String()] = peerAPI
	if role == schema.RoleSource {
		// The destination's address arrives in ServerState; record it for
		// resolve's cross-check when it does.
		c.OnPeerAPI = func(addr string) {
			s.mu.Lock()
			s.peerAPI[id.String()] = addr
			s.mu.Unlock()
		}
	}
	c.Progress = func(p migrate.Progress) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.mig == nil || s.mig.ID != id.String() {
			return
		}
		s.mig.Phase = p.Phase.String()
		s.mig.Progress = &ProgressStatus{
			Phase: p.Phase.String(), Round: p.Round, RoundPages: p.RoundPages, RoundDone: p.RoundDone,
			Bytes: p.Bytes, RemainingBytes: p.RemainingBytes, Rate: p.Rate, ETANs: p.ETA.Nanoseconds(),
		}
	}
	return c
}

// StartMigration makes this server pull the VM from the server at source.
// It returns at once; GET /v1/instance follows the migration.
func (s *Server) StartMigration(source string) (migrate.ID, error) {
	return s.Start(MigrateRequest{Source: source})
}

// Start is StartMigration with the migration's own settings, which it
// refuses if they are invalid (migrate.ErrInvalidSettings).
func (s *Server) Start(req MigrateRequest) (migrate.ID, error) {
	id := migrate.NewID()
	var settings migrate.Settings
	if req.Settings != nil {
		settings = *req.Settings
	}
	if err := settings.Validate(); err != nil {
		return id, err
	}
	source := req.Source
	s.mu.Lock()
	if s.state != StateWaiting && s.state != StateFailed && s.state != StateMigrated {
		state := s.state
		s.mu.Unlock()
		return id, fmt.Errorf("%w: cannot migrate in while %s", ErrBusy, state)
	}
	s.state = StateMigratingIn
	s.mig, s.migErr = &MigrationStatus{ID: id.String(), Role: schema.RoleDestination.String(), Peer: source, Result: ResultRunning}, nil
	s.mu.Unlock()

	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runDestination(s.baseCtx, id, source, settings)
	}()
	return id, nil
}

// MigrateFrom pulls the VM from source and waits for the outcome.
func (s *Server) MigrateFrom(ctx context.Context, source string) (*model.Side, error) {
	id, err := s.StartMigration(source)
	if err != nil {
		return nil, err
	}
	for {
		s.mu.Lock()
		m := s.mig
		done := m != nil && m.ID == id.String() && m.Result != ResultRunning
		var res *model.Side
		var errText string
		var migErr error
		if done {
			res, errText, migErr = m.Detail, m.Error, s.migErr
		}
		s.mu.Unlock()
		if done {
			if migErr != nil {
				return res, migErr
			}
			if errText != "" {
				return res, errors.New(errText)
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *Server) runDestination(ctx context.Context, id migrate.ID, source string, settings migrate.Settings) {
	base := s.cfg.Migration
	settings.ApplyTo(&base)
	s.mu.Lock()
	cfg := s.migrationConfig(base, id, schema.RoleDestination, source)
	s.mu.Unlock()
	dial := func(ctx context.Context) (net.Conn, error) {
		q := url.Values{"id": {id.String()}, PeerAPIParam: {s.cfg.Address}}
		if tp, ts := tracing.Inject(ctx); tp != "" {
			q.Set(tracing.HeaderTraceparent, tp)
			if ts != "" {
				q.Set(tracing.HeaderTracestate, ts)
			}
		}
		// The settings that act on the source go to it; clock-skew
		// correction, which this side applies, goes so that both sides
		// record the same settings.
		toSource := settings
		toSource.ClockSkewCorrection = &base.ClockSkewCorrection
		toSource.Query(q)
		nc, hdr, err := wire.DialHeader(ctx, source, s.cfg.ClientTLS, StreamPath+"?"+q.Encode())
		if err != nil {
			return nil, err
		}
		if st, ok := parseSettingsHeader(hdr.Get(SettingsHeader)); ok {
			cfg.Control.SetPeerSettings(st)
		}
		return nc, nil
	}
	vm, res, err := migrate.RunDestination(ctx, dial, s.cfg.Backend, id, cfg)
	s.flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finishStatus(res, err)
	if err != nil && vm != nil {
		// The handoff's outcome is unknown (the server is shutting down):
		// the verified guest stays here, paused.
		s.vm, s.state = vm, StatePaused
		s.log.Error("migration in: outcome unknown, keeping the verified guest paused", "id", id, "source", source, "err", err)
		return
	}
	if err != nil && res != nil && res.Cancelled() {
		// Nothing here failed: the server takes a VM in again as before.
		s.state = StateWaiting
		s.log.Warn("migration in cancelled", "id", id, "source", source, "by", res.CancelledBy)
		return
	}
	if err != nil {
		s.state = StateFailed
		s.log.Error("migration in failed", "id", id, "source", source, "err", err)
		return
	}
	s.vm, s.state = vm, StateRunning
	s.log.Info("migration in succeeded", "id", id, "source", source, "blackout", time.Duration(res.Blackout.Ns))
}

// finishStatus records a migration's outcome; s.mu must be held.
func (s *Server) finishStatus(res *model.Side, err error) {
	if s.mig == nil {
		return
	}
	s.mig.Detail = res
	s.migErr = err
	s.mig.Progress = nil
	if err != nil {
		s.mig.Result = schema.ResultFailure
		if res != nil && res.Cancelled() {
			// Its peer's cancel, perhaps, learnt from the peer.
			s.mig.Result, s.mig.CancelledBy = schema.ResultCancelled, res.CancelledBy
		}
		s.mig.Error = err.Error()
		if p, ok := migrate.FailedPhase(err); ok {
			s.mig.ErrorPhase = p.String()
			s.mig.Phase = p.String()
		}
		return
	}
	s.mig.Result = schema.ResultSuccess
	s.mig.Phase = schema.PhaseFinish.String()
}

func (s *Server) flush() {
	if s.cfg.Flush == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.cfg.Flush(ctx); err != nil {
		s.log.Warn("flushing telemetry after a migration", "err", err)
	}
}
