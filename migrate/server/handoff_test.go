package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/tracing/schema"
)

// An operator may settle what the peer cannot say, never overrule what
// it does say.
func TestResolutionConflicts(t *testing.T) {
	src, dst := schema.RoleSource.String(), schema.RoleDestination.String()
	for _, tc := range []struct {
		role     string
		res      migrate.Resolution
		peer     migrate.HandoffState
		conflict bool
	}{
		{src, migrate.ResolveAbort, migrate.HandoffResumed, true},   // both would run it
		{src, migrate.ResolveCommit, migrate.HandoffAborted, true},  // neither would
		{src, migrate.ResolveAbort, migrate.HandoffReady, false},    // the destination waits: ours to decide
		{src, migrate.ResolveCommit, migrate.HandoffResumed, false}, // agrees
		{dst, migrate.ResolveCommit, migrate.HandoffAborted, true},
		{dst, migrate.ResolveAbort, migrate.HandoffCommitted, true},
		{dst, migrate.ResolveAbort, migrate.HandoffCompleted, true},
		{dst, migrate.ResolveCommit, migrate.HandoffCommitted, false},
		{dst, migrate.ResolveAbort, migrate.HandoffUndecided, false},
	} {
		if got := resolutionConflicts(tc.role, tc.res, tc.peer) != ""; got != tc.conflict {
			t.Errorf("%s %s with the peer %q: conflict %v, want %v", tc.role, tc.res, tc.peer, got, tc.conflict)
		}
	}
}

// The handoff API: an unknown migration is 404 (which a peer reads as "no
// copy here"), and a resolution of a migration that is not pending, or a
// bad action, is refused without effect.
func TestHandoffAPI(t *testing.T) {
	srv, addr := startTestServer(t)
	c := NewClient(addr, http.DefaultClient, false)
	ctx := context.Background()
	id := migrate.NewID()
	if _, err := c.Handoff(ctx, id.String()); !errors.Is(err, migrate.ErrUnknownMigration) {
		t.Fatalf("unknown migration: %v, want ErrUnknownMigration", err)
	}
	srv.mu.Lock()
	h := srv.track(id, schema.RoleDestination)
	srv.mu.Unlock()
	st, err := c.Handoff(ctx, id.String())
	if err != nil || st.Role != "destination" || st.Pending {
		t.Fatalf("handoff %+v, %v", st, err)
	}
	var apiErr *APIError
	if _, err := c.Resolve(ctx, id.String(), migrate.ResolveCommit); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict {
		t.Errorf("resolving a handoff that is not pending: %v, want 409", err)
	}
	if _, err := c.Resolve(ctx, id.String(), "maybe"); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad action: %v, want 400", err)
	}
	if s, pending := h.h.State(); s != migrate.HandoffNone || pending {
		t.Errorf("refused resolutions changed the record: %q, %v", s, pending)
	}
}

func startTestServer(t *testing.T) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), Config{Backend: testBackend(t), Address: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv, ln.Addr().String()
}

func testBackend(t *testing.T) *sim.Backend {
	t.Helper()
	b, err := sim.New(sim.WithMemory(8<<20), sim.WithDirtyRate(0))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
