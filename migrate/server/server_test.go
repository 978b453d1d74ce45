package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/migrate/wire/wiretest"
	"github.com/migtrace/migtrace/tracing/schema"
)

type testServer struct {
	*Server
	addr string
}

// start runs a server on a loopback port until the test ends.
func start(t *testing.T, boot bool, serverTLS, clientTLS *tls.Config) *testServer {
	t.Helper()
	backend, err := sim.New(sim.WithMemory(8<<20), sim.WithDirtyRate(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := New(ctx, Config{
		Name: "test", Address: ln.Addr().String(), Backend: backend, Boot: boot, Spec: backend.DefaultSpec(),
		ServerTLS: serverTLS, ClientTLS: clientTLS,
		Migration: migrate.Config{IOTimeout: 5 * time.Second},
	})
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

func TestMigrateBetweenServers(t *testing.T) {
	src := start(t, true, nil, nil)
	dst := start(t, false, nil, nil)
	if st := dst.Status().State; st != StateWaiting {
		t.Fatalf("destination starts %s, want waiting", st)
	}
	res, err := dst.MigrateFrom(context.Background(), src.addr)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified() {
		t.Errorf("migration not verified: %+v", res)
	}
	if st := src.Status(); st.State != StateMigrated || st.Migration.Result != schema.ResultSuccess || st.Migration.Role != "source" {
		t.Errorf("source status %+v", st)
	}
	st := dst.Status()
	if st.State != StateRunning || st.GuestTSC == 0 || st.MemoryBytes != 8<<20 || st.Migration.Detail == nil {
		t.Errorf("destination status %+v", st)
	}
	// The VM can move on again, back to where it came from.
	if _, err := src.MigrateFrom(context.Background(), dst.addr); err != nil {
		t.Fatalf("migrating back: %v", err)
	}
	if src.Status().State != StateRunning || dst.Status().State != StateMigrated {
		t.Errorf("after migrating back: source %s, destination %s", src.Status().State, dst.Status().State)
	}
}

func TestHTTPAPI(t *testing.T) {
	src := start(t, true, nil, nil)
	dst := start(t, false, nil, nil)
	post := func(addr, body string) (int, string) {
		resp, err := http.Post("http://"+addr+"/v1/migrate", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	tests := []struct {
		name, addr, body string
		code             int
		want             string
	}{
		{"not JSON", dst.addr, "source=x", 400, "request body"},
		{"empty source", dst.addr, `{"source": ""}`, 400, "empty"},
		{"unknown field", dst.addr, `{"src": "127.0.0.1:1"}`, 400, "unknown field"},
		{"bad address", dst.addr, `{"source": "nowhere"}`, 400, "HOST:PORT"},
		{"source busy running", src.addr, `{"source": "127.0.0.1:1"}`, 409, "running"},
	}
	for _, tc := range tests {
		code, body := post(tc.addr, tc.body)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s, want %d containing %q", tc.name, code, body, tc.code, tc.want)
		}
	}
	// A stream request to a server with no VM is refused.
	_, err := wire.Dial(context.Background(), dst.addr, nil, StreamPath+"?id="+migrate.NewID().String())
	if !errors.Is(err, wire.ErrUpgrade) || !strings.Contains(err.Error(), "409") {
		t.Errorf("stream from a VM-less server: %v", err)
	}
	// A migration from an address nobody serves fails cleanly in Sync.
	code, body := post(dst.addr, `{"source": "127.0.0.1:1"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	var st InstanceStatus
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get("http://" + dst.addr + "/v1/instance")
		if err != nil {
			t.Fatal(err)
		}
		st = InstanceStatus{}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.Migration != nil && st.Migration.Result != "running" {
			break
		}
	}
	if st.State != StateFailed || st.Migration.Result != schema.ResultFailure || st.Migration.ErrorPhase != "Sync" {
		t.Errorf("status after a failed migration in: %+v %+v", st, st.Migration)
	}
}

func tlsPair(t *testing.T, pki *wiretest.PKI, files wiretest.CertFiles) (*tls.Config, *tls.Config) {
	t.Helper()
	s, err := wire.ServerTLSConfig(files.CertFile, files.KeyFile, pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	c, err := wire.ClientTLSConfig(files.CertFile, files.KeyFile, pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func TestMutualTLS(t *testing.T) {
	pki := wiretest.NewPKI(t)
	sTLS, cTLS := tlsPair(t, pki, pki.Peer(t))
	src := start(t, true, sTLS, cTLS)
	dst := start(t, false, sTLS, cTLS)
	if _, err := dst.MigrateFrom(context.Background(), src.addr); err != nil {
		t.Fatalf("migration over mutual TLS: %v", err)
	}

	// Refused peers change nothing on the source.
	src2 := start(t, true, sTLS, cTLS)
	path := StreamPath + "?id=" + migrate.NewID().String()
	foreignS, foreignC := tlsPair(t, pki, pki.Foreign(t))
	_ = foreignS
	expired := pki.Expired(t)
	_, expiredC := tlsPair(t, pki, expired)
	for _, tc := range []struct {
		name string
		conf *tls.Config
	}{
		{"client certificate from another CA", foreignC},
		{"expired client certificate", expiredC},
		{"plaintext", nil},
	} {
		_, err := wire.Dial(context.Background(), src2.addr, tc.conf, path)
		if err == nil {
			t.Errorf("%s: dial succeeded", tc.name)
		}
		if st := src2.Status(); st.State != StateRunning || st.Migration != nil {
			t.Errorf("%s: source state %s, migration %+v", tc.name, st.State, st.Migration)
		}
	}
	// A destination whose client certificate the source does not trust
	// fails in Sync and keeps no VM.
	fS, fC := tlsPair(t, pki, pki.Foreign(t))
	_ = fS
	dst2 := start(t, false, sTLS, fC)
	if _, err := dst2.MigrateFrom(context.Background(), src2.addr); err == nil {
		t.Fatal("migration with an untrusted client certificate succeeded")
	}
	if st := dst2.Status(); st.State != StateFailed || dst2.VM() != nil {
		t.Errorf("destination after refusal: %s", st.State)
	}
	if st := src2.Status(); st.State != StateRunning {
		t.Errorf("source after refusal: %s", st.State)
	}
}
