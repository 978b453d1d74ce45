package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
)

// startWith runs a server like start, with cfg adjusted by tune.
func startWith(t *testing.T, boot bool, tune func(*Config)) *testServer {
	t.Helper()
	backend, err := sim.New(sim.WithMemory(8<<20), sim.WithDirtyRate(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Name: "test", Address: ln.Addr().String(), Backend: backend, Boot: boot, Spec: backend.DefaultSpec(),
		Migration: migrate.Config{IOTimeout: 5 * time.Second},
	}
	tune(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return &testServer{srv, ln.Addr().String()}
}

// awaitClosed waits until the peer closes nc, failing after within.
func awaitClosed(t *testing.T, nc net.Conn, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	_ = nc.SetReadDeadline(began.Add(within))
	_, err := io.Copy(io.Discard, nc)
	if err != nil {
		t.Fatalf("connection still open after %v: %v", within, err)
	}
	return time.Since(began)
}

const shortHandshake = 300 * time.Millisecond

// A stream that upgrades and then never speaks claims nothing: the VM
// stays running with no migration on record, a real destination takes
// it meanwhile, and the silent stream is dropped at the handshake
// deadline. Before, the source claimed its VM as the request arrived, so
// the real migration got 409 until the silent one timed out.
func TestSilentStreamClaimsNothing(t *testing.T) {
	src := startWith(t, true, func(c *Config) { c.HandshakeTimeout = shortHandshake })
	dst := start(t, false, nil, nil)

	silent, err := wire.Dial(context.Background(), src.addr, nil, StreamPath+"?id="+migrate.NewID().String())
	if err != nil {
		t.Fatalf("upgrading the silent stream: %v", err)
	}
	defer silent.Close()
	if st := src.Status(); st.State != StateRunning || st.Migration != nil {
		t.Errorf("a silent stream changed the source: %s, %+v", st.State, st.Migration)
	}
	if _, err := dst.MigrateFrom(context.Background(), src.addr); err != nil {
		t.Fatalf("real migration beside a silent stream: %v", err)
	}
	took := awaitClosed(t, silent, 10*time.Second)
	t.Logf("silent stream dropped %v after the migration", took.Round(time.Millisecond))
}

// Stream requests that are not a migration never create or overwrite the
// instance's migration record: GET /v1/instance still shows the last
// real one.
func TestBogusStreamRequestsKeepTheRecord(t *testing.T) {
	src := start(t, true, nil, nil)
	srv := startWith(t, false, func(c *Config) { c.HandshakeTimeout = shortHandshake })
	if _, err := srv.MigrateFrom(context.Background(), src.addr); err != nil {
		t.Fatal(err)
	}
	real := *srv.Status().Migration

	get := func(path string, upgrade bool) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+srv.addr+path, nil)
		if upgrade {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", wire.UpgradeProtocol)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	tests := []struct {
		name string
		try  func(t *testing.T)
	}{
		{"malformed id", func(t *testing.T) {
			if code, body := get(StreamPath+"?id=nope", true); code != http.StatusBadRequest {
				t.Errorf("%d %s, want 400", code, body)
			}
		}},
		{"no id", func(t *testing.T) {
			if code, body := get(StreamPath, true); code != http.StatusBadRequest {
				t.Errorf("%d %s, want 400", code, body)
			}
		}},
		{"not an upgrade", func(t *testing.T) {
			if code, body := get(StreamPath+"?id="+migrate.NewID().String(), false); code != http.StatusUpgradeRequired {
				t.Errorf("%d %s, want 426", code, body)
			}
		}},
		{"unknown id, silent", func(t *testing.T) {
			nc, err := wire.Dial(context.Background(), srv.addr, nil, StreamPath+"?id="+migrate.NewID().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			awaitClosed(t, nc, 10*time.Second)
		}},
		{"the last migration's id again", func(t *testing.T) {
			_, err := wire.Dial(context.Background(), srv.addr, nil, StreamPath+"?id="+real.ID)
			if !errors.Is(err, wire.ErrUpgrade) || !strings.Contains(err.Error(), "409 Conflict: instance busy: migration "+real.ID+" already ran here") {
				t.Errorf("replayed id: %v, want 409 saying it already ran", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.try(t)
			st := srv.Status()
			if st.State != StateRunning || st.Migration == nil || st.Migration.ID != real.ID ||
				st.Migration.Role != real.Role || st.Migration.Result != real.Result {
				t.Errorf("record after the request: %s, %+v; want running with %s %s %s",
					st.State, st.Migration, real.ID, real.Role, real.Result)
			}
		})
	}
	// The VM still moves on.
	if _, err := src.MigrateFrom(context.Background(), srv.addr); err != nil {
		t.Fatalf("migrating out after the bogus requests: %v", err)
	}
}

// Two streams may both pass the first check; the one that completes the
// handshake first takes the VM, and the other hears why in Sync.
func TestSecondStreamRefusedAfterHandshake(t *testing.T) {
	src := start(t, true, nil, nil)
	ctx := context.Background()
	dial := func() *wire.Conn {
		nc, err := wire.Dial(ctx, src.addr, nil, StreamPath+"?id="+migrate.NewID().String())
		if err != nil {
			t.Fatal(err)
		}
		c := wire.NewConn(nc, wire.WithIOTimeout(5*time.Second))
		t.Cleanup(func() { c.Close() })
		return c
	}
	late, first := dial(), dial()
	if _, err := wire.HandshakeClient(ctx, first, wire.SupportedVersions); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.Expect[*wire.Sync](ctx, first); err != nil {
		t.Fatalf("the first stream: %v", err)
	}
	if _, err := wire.HandshakeClient(ctx, late, wire.SupportedVersions); err != nil {
		t.Fatal(err)
	}
	_, err := wire.Expect[*wire.Sync](ctx, late)
	var remote *wire.RemoteError
	if !errors.As(err, &remote) || !strings.Contains(remote.Message, "migrating-out") {
		t.Errorf("the late stream: %v, want a refusal naming the migration under way", err)
	}
	// The first stream's migration fails when it hangs up; the VM stays.
	first.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st := src.Status()
		if st.State == StateRunning && st.Migration != nil && st.Migration.Result != ResultRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("source after its destination hung up: %s, %+v", st.State, st.Migration)
		}
	}
}
