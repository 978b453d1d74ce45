package main

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/migrate/wire/wiretest"
)

// startPublic runs `serve` on every interface at a free port and returns
// the loopback address it answers on; clientTLS is how to reach a TLS one.
func startPublic(t *testing.T, clientTLS *tls.Config, args ...string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(servertest.FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Start(t, servertest.Binary(t), servertest.Options{
		Args: append([]string{"--listen", "0.0.0.0:" + port}, args...), TLS: clientTLS}).Addr()
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
		startPublic(t, nil, "--insecure")
	})
	t.Run("mutual TLS", func(t *testing.T) {
		pki := wiretest.NewPKI(t)
		peer := pki.Peer(t)
		clientTLS, err := wire.ClientTLSConfig(peer.CertFile, peer.KeyFile, pki.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		addr := startPublic(t, clientTLS, "--tls-cert", peer.CertFile, "--tls-key", peer.KeyFile, "--tls-ca", pki.CAFile)

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
