package wire

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// UpgradeProtocol is the token in the Upgrade header that switches an
// HTTP/1.1 connection to the migration protocol.
const UpgradeProtocol = "migtrace-migrate"

// DialTimeout bounds Dial (connect, TLS handshake and upgrade) when ctx has
// no earlier deadline.
const DialTimeout = 30 * time.Second

// maxStatusBody bounds how much of a refusal's body Dial reads for its error.
const maxStatusBody = 4 << 10

// Dial connects to a server's HTTP address and upgrades the connection to
// the migration protocol: it sends GET path with "Connection: Upgrade" and
// "Upgrade: migtrace-migrate" and expects 101 Switching Protocols. With
// tlsConf (see ClientTLSConfig) the whole connection is TLS; its ServerName
// defaults to addr's host. Any other answer gives an *UpgradeError
// (ErrUpgrade) with the status and the first line of the body.
func Dial(ctx context.Context, addr string, tlsConf *tls.Config, path string) (net.Conn, error) {
	nc, _, err := DialHeader(ctx, addr, tlsConf, path)
	return nc, err
}

// DialHeader is Dial that also returns the headers of the server's 101
// answer, which may say how it will run the migration.
func DialHeader(ctx context.Context, addr string, tlsConf *tls.Config, path string) (net.Conn, http.Header, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DialTimeout)
		defer cancel()
	}
	var (
		nc  net.Conn
		err error
	)
	if tlsConf != nil {
		cfg := tlsConf.Clone()
		if cfg.ServerName == "" {
			host, _, splitErr := net.SplitHostPort(addr)
			if splitErr != nil {
				return nil, nil, fmt.Errorf("dialling %s: %w", addr, splitErr)
			}
			cfg.ServerName = host
		}
		d := tls.Dialer{Config: cfg}
		nc, err = d.DialContext(ctx, "tcp", addr)
	} else {
		var d net.Dialer
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dialling %s: %w", addr, err)
	}
	conn, hdr, err := upgradeClient(ctx, nc, addr, path)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return conn, hdr, nil
}

func upgradeClient(ctx context.Context, nc net.Conn, addr, path string) (_ net.Conn, _ http.Header, err error) {
	conn, err := upgradeClientConn(ctx, nc, addr, path)
	if err != nil {
		return nil, nil, err
	}
	return conn.nc, conn.hdr, nil
}

type upgraded struct {
	nc  net.Conn
	hdr http.Header
}

func upgradeClientConn(ctx context.Context, nc net.Conn, addr, path string) (*upgraded, error) {
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(pastDeadline) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		if err := nc.SetDeadline(dl); err != nil {
			return nil, fmt.Errorf("upgrading %s%s: %w", addr, path, err)
		}
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("upgrading %s%s: %w", addr, path, err)
	}

	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, fmt.Errorf("upgrading %s%s: %w", addr, path, err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", UpgradeProtocol)
	if err := req.Write(nc); err != nil {
		return nil, fail(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fail(fmt.Errorf("reading the response: %w", err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols ||
		!strings.EqualFold(resp.Header.Get("Upgrade"), UpgradeProtocol) {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxStatusBody))
		resp.Body.Close()
		uerr := &UpgradeError{Addr: addr, Path: path, Status: resp.Status, Body: refusalReason(body)}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			uerr.Body = fmt.Sprintf("upgraded to %q, not %q", resp.Header.Get("Upgrade"), UpgradeProtocol)
		}
		return nil, uerr
	}
	if !stop() {
		// ctx ended just now and its callback may have set a past deadline.
		return nil, fail(context.Cause(ctx))
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, fail(err)
	}
	return &upgraded{nc: withBuffered(nc, br), hdr: resp.Header}, nil
}

// refusalReason is what a refusal's body says: the "error" string of a
// JSON object (an instance server's ErrorResponse, which is indented, so
// its first line says nothing), otherwise the body's first line.
func refusalReason(body []byte) string {
	var obj struct {
		Error *string `json:"error"`
	}
	if json.Unmarshal(body, &obj) == nil && obj.Error != nil {
		return strings.TrimSpace(*obj.Error)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
	return strings.TrimSpace(line)
}

// Upgrade switches an incoming HTTP/1.1 request to the migration protocol:
// it checks the Upgrade request, answers 101 Switching Protocols and
// hijacks the connection. The returned net.Conn first yields any bytes the
// server had already buffered, and has no deadlines set. A request that is
// not an upgrade to migtrace-migrate is answered with 426 Upgrade Required
// and an error (ErrUpgrade). Callers that refuse a migration for their own
// reasons answer with an HTTP error before calling Upgrade.
func Upgrade(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	return UpgradeHeader(w, r, nil)
}

// UpgradeHeader is Upgrade that adds hdr to the 101 answer.
func UpgradeHeader(w http.ResponseWriter, r *http.Request, hdr http.Header) (net.Conn, error) {
	if r.Method != http.MethodGet || !headerHasToken(r.Header, "Connection", "upgrade") ||
		!strings.EqualFold(r.Header.Get("Upgrade"), UpgradeProtocol) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", UpgradeProtocol)
		http.Error(w, fmt.Sprintf("expected GET with Connection: Upgrade and Upgrade: %s", UpgradeProtocol), http.StatusUpgradeRequired)
		return nil, fmt.Errorf("request %s %s is not an upgrade to %s: %w", r.Method, r.URL.Path, UpgradeProtocol, ErrUpgrade)
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot take over the connection", http.StatusInternalServerError)
		return nil, fmt.Errorf("hijacking %s: %w: %w", r.URL.Path, ErrUpgrade, err)
	}
	// The server may have left its own read or write deadlines in place.
	if err := nc.SetDeadline(time.Time{}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("upgrading %s: %w", r.URL.Path, err)
	}
	var resp strings.Builder
	resp.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + UpgradeProtocol + "\r\n")
	if err := hdr.Write(&resp); err != nil {
		nc.Close()
		return nil, fmt.Errorf("upgrading %s: %w", r.URL.Path, err)
	}
	resp.WriteString("\r\n")
	if _, err := io.WriteString(nc, resp.String()); err != nil {
		nc.Close()
		return nil, fmt.Errorf("upgrading %s: %w", r.URL.Path, err)
	}
	return withBuffered(nc, brw.Reader), nil
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// withBuffered returns nc itself when br holds nothing, so that the Conn
// keeps its fast paths (writev on TCP), or a conn that drains br's bytes
// before reading from nc.
func withBuffered(nc net.Conn, br *bufio.Reader) net.Conn {
	n := br.Buffered()
	if n == 0 {
		return nc
	}
	pending, _ := br.Peek(n)
	return &bufferedConn{Conn: nc, pending: append([]byte(nil), pending...)}
}

type bufferedConn struct {
	net.Conn
	pending []byte
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
