package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/migrate/wire/wiretest"
)

// startPublic runs `serve` on every interface at a free port and returns
// the loopback address it answers on, once get succeeds there.
func startPublic(t *testing.T, get func(addr string) error, args ...string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(migtraceBinary(t), append([]string{"serve", "--listen", "0.0.0.0:" + port}, args...)...)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	addr := net.JoinHostPort("127.0.0.1", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err = get(addr); err == nil {
			return addr
		}
		select {
		case werr := <-exited:
			t.Fatalf("serve exited: %v\n%s", werr, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve on %s never answered: %v\n%s", addr, err, logs.String())
		}
	}
}

func getInstance(c *http.Client, url string) error {
	resp, err := c.Get(url + "/v1/instance")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &httpError{resp.StatusCode, strings.TrimSpace(string(body))}
	}
	var st server.InstanceStatus
	return json.Unmarshal(body, &st)
}

type httpError struct {
	code int
	body string
}

func (e *httpError) Error() string { return http.StatusText(e.code) + ": " + e.body }

// On a non-loopback address serve needs TLS or an explicit --insecure
// (TestServeRefusesPublicAddressWithoutTLS covers the refusal); with
// either it starts, and with TLS it answers only TLS clients.
func TestServePublicAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Run("insecure", func(t *testing.T) {
		plain := &http.Client{Timeout: 2 * time.Second}
		startPublic(t, func(addr string) error { return getInstance(plain, "http://"+addr) }, "--insecure")
	})
	t.Run("mutual TLS", func(t *testing.T) {
		pki := wiretest.NewPKI(t)
		peer := pki.Peer(t)
		clientTLS, err := wire.ClientTLSConfig(peer.CertFile, peer.KeyFile, pki.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		tlsClient := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS}}
		addr := startPublic(t, func(addr string) error { return getInstance(tlsClient, "https://"+addr) },
			"--tls-cert", peer.CertFile, "--tls-key", peer.KeyFile, "--tls-ca", pki.CAFile)

		plain := &http.Client{Timeout: 2 * time.Second}
		err = getInstance(plain, "http://"+addr)
		var he *httpError
		if !errors.As(err, &he) || he.code != http.StatusBadRequest || !strings.Contains(he.body, "HTTPS") {
			t.Errorf("plaintext request to the TLS server: %v, want 400 naming HTTPS", err)
		}
		// A TLS client without a certificate is refused in the handshake.
		anon := clientTLS.Clone()
		anon.Certificates, anon.GetClientCertificate = nil, nil
		noCert := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: anon}}
		if err := getInstance(noCert, "https://"+addr); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("TLS request without a client certificate: %v, want refused naming the certificate", err)
		}
	})
}
