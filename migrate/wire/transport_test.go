package wire_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/migrate/wire/wiretest"
)

const migratePath = "/v1/migrate/stream"

// echoServer upgrades requests on migratePath, runs the server handshake,
// answers one RoundBegin with a RoundAck, and counts the streams it served.
type echoServer struct {
	served atomic.Int32
	errs   chan error
}

func newEchoServer() *echoServer { return &echoServer{errs: make(chan error, 8)} }

func (s *echoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != migratePath {
		http.Error(w, "no migration here\nsecond line", http.StatusNotFound)
		return
	}
	nc, err := wire.Upgrade(w, r)
	if err != nil {
		s.errs <- err
		return
	}
	c := wire.NewConn(nc)
	defer c.Close()
	ctx := r.Context()
	if _, err := wire.HandshakeServer(ctx, c, wire.SupportedVersions); err != nil {
		s.errs <- err
		return
	}
	rb, err := wire.Expect[*wire.RoundBegin](ctx, c)
	if err != nil {
		s.errs <- err
		return
	}
	s.served.Add(1) // before the ack, which the client waits for
	if err := c.Send(ctx, &wire.RoundAck{Round: rb.Round, PagesReceived: rb.Pages}); err != nil {
		s.errs <- err
	}
}

// migrateOnce dials, handshakes and exchanges one round.
func migrateOnce(ctx context.Context, addr string, tlsConf *tls.Config) error {
	nc, err := wire.Dial(ctx, addr, tlsConf, migratePath)
	if err != nil {
		return err
	}
	c := wire.NewConn(nc)
	defer c.Close()
	if _, err := wire.HandshakeClient(ctx, c, wire.SupportedVersions); err != nil {
		return err
	}
	if err := c.Send(ctx, &wire.RoundBegin{Round: 3, Pages: 77}); err != nil {
		return err
	}
	ack, err := wire.Expect[*wire.RoundAck](ctx, c)
	if err != nil {
		return err
	}
	if ack.Round != 3 || ack.PagesReceived != 77 {
		return errors.New("wrong ack")
	}
	return nil
}

func TestDialUpgrade(t *testing.T) {
	srv := newEchoServer()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	addr := strings.TrimPrefix(hs.URL, "http://")
	if err := migrateOnce(t.Context(), addr, nil); err != nil {
		t.Fatalf("migration stream: %v", err)
	}
	if srv.served.Load() != 1 {
		t.Fatal("server did not serve the stream")
	}
}

func TestDialRefused(t *testing.T) {
	hs := httptest.NewServer(newEchoServer())
	defer hs.Close()
	addr := strings.TrimPrefix(hs.URL, "http://")
	_, err := wire.Dial(t.Context(), addr, nil, "/elsewhere")
	var ue *wire.UpgradeError
	if !errors.Is(err, wire.ErrUpgrade) || !errors.As(err, &ue) {
		t.Fatalf("err = %v, want an UpgradeError", err)
	}
	if ue.Status != "404 Not Found" || ue.Body != "no migration here" {
		t.Fatalf("status %q body %q", ue.Status, ue.Body)
	}
	if !strings.Contains(err.Error(), "404 Not Found: no migration here") {
		t.Errorf("message %q lacks the status and body", err)
	}
}

func TestUpgradeRefusesPlainRequest(t *testing.T) {
	srv := newEchoServer()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	resp, err := http.Get(hs.URL + migratePath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("status %d, want 426", resp.StatusCode)
	}
	if err := <-srv.errs; !errors.Is(err, wire.ErrUpgrade) {
		t.Fatalf("server err = %v, want ErrUpgrade", err)
	}
}

// A client that sends its first frame in the same packet as the upgrade
// request: the bytes the HTTP server buffered must reach the Conn.
func TestUpgradeKeepsBufferedBytes(t *testing.T) {
	hs := httptest.NewServer(newEchoServer())
	defer hs.Close()
	nc, err := net.Dial("tcp", strings.TrimPrefix(hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := "GET " + migratePath + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: migtrace-migrate\r\n\r\n"
	early := append([]byte(req), frame(&wire.Hello{Versions: wire.SupportedVersions})...)
	early = append(early, frame(&wire.RoundBegin{Round: 1, Pages: 2})...)
	if _, err := nc.Write(early); err != nil {
		t.Fatal(err)
	}
	const status = "HTTP/1.1 101 Switching Protocols\r\n"
	buf := make([]byte, len(status))
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != status {
		t.Fatalf("status line %q, %v", buf, err)
	}
	// Skip the rest of the response head.
	var last []byte
	one := make([]byte, 1)
	for !strings.HasSuffix(string(last), "\r\n\r\n") {
		if _, err := nc.Read(one); err != nil {
			t.Fatal(err)
		}
		last = append(last, one[0])
	}
	c := wire.NewConn(nc)
	if _, err := wire.Expect[*wire.HelloReply](t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if ack, err := wire.Expect[*wire.RoundAck](t.Context(), c); err != nil || ack.PagesReceived != 2 {
		t.Fatalf("ack %+v, %v", ack, err)
	}
}

// tlsServer serves srv over TLS with cfg on a loopback listener.
func tlsServer(t *testing.T, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ErrorLog: discardLog()}
	go hs.Serve(tls.NewListener(ln, cfg))
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

func TestTLS(t *testing.T) {
	pki := wiretest.NewPKI(t)
	server := pki.Server(t)
	client := pki.Client(t)
	serverConf, err := wire.ServerTLSConfig(server.CertFile, server.KeyFile, pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	clientConf := func(t *testing.T, cf wiretest.CertFiles) *tls.Config {
		t.Helper()
		c, err := wire.ClientTLSConfig(cf.CertFile, cf.KeyFile, pki.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	t.Run("mutual authentication", func(t *testing.T) {
		srv := newEchoServer()
		addr := tlsServer(t, serverConf, srv)
		if err := migrateOnce(t.Context(), addr, clientConf(t, client)); err != nil {
			t.Fatalf("migration stream over TLS: %v", err)
		}
		if srv.served.Load() != 1 {
			t.Fatal("server did not serve the stream")
		}
	})

	refused := []struct {
		name    string
		server  *tls.Config
		client  func(t *testing.T) *tls.Config
		mention string
	}{
		{"client cert from another CA", serverConf, func(t *testing.T) *tls.Config { return clientConf(t, pki.Foreign(t)) }, "certificate"},
		{"expired client cert", serverConf, func(t *testing.T) *tls.Config { return clientConf(t, pki.Expired(t)) }, "certificate"},
		{"client without a cert", serverConf, func(t *testing.T) *tls.Config {
			c := clientConf(t, client)
			c.Certificates = nil
			return c
		}, "certificate"},
		{"expired server cert", func() *tls.Config {
			ex := pki.Expired(t)
			c, err := wire.ServerTLSConfig(ex.CertFile, ex.KeyFile, pki.CAFile)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}(), func(t *testing.T) *tls.Config { return clientConf(t, client) }, "expired"},
		{"server cert from another CA", func() *tls.Config {
			f := pki.Foreign(t)
			c, err := wire.ServerTLSConfig(f.CertFile, f.KeyFile, pki.CAFile)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}(), func(t *testing.T) *tls.Config { return clientConf(t, client) }, "unknown authority"},
		{"TLS 1.2 client", serverConf, func(t *testing.T) *tls.Config {
			c := clientConf(t, client)
			c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
			return c
		}, "version"},
		{"plaintext client", serverConf, func(*testing.T) *tls.Config { return nil }, "400 Bad Request"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			srv := newEchoServer()
			addr := tlsServer(t, tt.server, srv)
			err := migrateOnce(t.Context(), addr, tt.client(t))
			if err == nil {
				t.Fatal("migration stream succeeded; want a refusal")
			}
			t.Logf("refused: %v", err)
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
			if srv.served.Load() != 0 {
				t.Fatal("server served a refused peer")
			}
		})
	}
}

func TestTLSConfigErrorsNameTheFile(t *testing.T) {
	pki := wiretest.NewPKI(t)
	good := pki.Server(t)
	tests := []struct {
		name            string
		cert, key, ca   string
		wantMentionFile string
	}{
		{"missing cert", "/nonexistent/server.crt", good.KeyFile, pki.CAFile, "/nonexistent/server.crt"},
		{"missing key", good.CertFile, "/nonexistent/server.key", pki.CAFile, "/nonexistent/server.key"},
		{"missing CA", good.CertFile, good.KeyFile, "/nonexistent/ca.crt", "/nonexistent/ca.crt"},
		{"key does not match", good.CertFile, pki.Client(t).KeyFile, pki.CAFile, good.CertFile},
		{"CA not PEM", good.CertFile, good.KeyFile, good.KeyFile, good.KeyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, load := range []func(string, string, string) (*tls.Config, error){wire.ServerTLSConfig, wire.ClientTLSConfig} {
				_, err := load(tt.cert, tt.key, tt.ca)
				if err == nil || !strings.Contains(err.Error(), tt.wantMentionFile) {
					t.Fatalf("err = %v, want it to name %s", err, tt.wantMentionFile)
				}
			}
		})
	}
}

// Headers the server adds to its 101 answer reach the dialler, and the
// stream after them is intact.
func TestUpgradeHeaderReachesDialler(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nc, err := wire.UpgradeHeader(w, r, http.Header{"Migtrace-Settings": {"max_rounds=3&max_bandwidth=1048576"}})
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		_, _ = nc.Write([]byte("frames"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	nc, hdr, err := wire.DialHeader(context.Background(), addr, nil, migratePath)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := hdr.Get("Migtrace-Settings"); got != "max_rounds=3&max_bandwidth=1048576" {
		t.Errorf("header %q", got)
	}
	b, err := io.ReadAll(nc)
	if err != nil || string(b) != "frames" {
		t.Errorf("stream after the 101: %q, %v", b, err)
	}
}
