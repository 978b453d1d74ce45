package wiretest

import (
	"crypto/x509"
	"testing"
	"time"
)

// Peer issues a certificate for localhost, 127.0.0.1 and ::1 good for both
// server and client use: an instance server presents it to destinations
// that dial it and to the sources it dials.
func (p *PKI) Peer(t testing.TB) CertFiles {
	t.Helper()
	return p.issue(t, "peer", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, time.Now().Add(24*time.Hour))
}
