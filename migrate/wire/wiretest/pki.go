package wiretest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority whose files live in a test's
// temporary directory.
type PKI struct {
	// CAFile is the CA certificate, PEM, for --tls-ca.
	CAFile string

	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial atomic.Int64
}

// CertFiles are a certificate and its key, PEM, as --tls-cert and
// --tls-key take them.
type CertFiles struct {
	CertFile, KeyFile string
}

// NewPKI mints a CA (ECDSA P-256, valid for a day).
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	return newPKI(t, "ca")
}

func newPKI(t testing.TB, name string) *PKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating CA key: %v", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "migtrace test " + name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("creating CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing CA certificate: %v", err)
	}
	p := &PKI{dir: t.TempDir(), ca: ca, caKey: key}
	p.serial.Store(1)
	p.CAFile = p.writePEM(t, name+".crt", "CERTIFICATE", der)
	return p
}

// Server issues a server certificate for localhost, 127.0.0.1 and ::1.
func (p *PKI) Server(t testing.TB) CertFiles {
	t.Helper()
	return p.issue(t, "server", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, time.Now().Add(24*time.Hour))
}

// Client issues a client certificate.
func (p *PKI) Client(t testing.TB) CertFiles {
	t.Helper()
	return p.issue(t, "client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, time.Now().Add(24*time.Hour))
}

// Expired issues a certificate, good for server and client use, that
// expired an hour ago.
func (p *PKI) Expired(t testing.TB) CertFiles {
	t.Helper()
	return p.issue(t, "expired", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, time.Now().Add(-time.Hour))
}

// Foreign issues a certificate, good for server and client use, signed by
// another CA that p's peers do not trust.
func (p *PKI) Foreign(t testing.TB) CertFiles {
	t.Helper()
	other := newPKI(t, "other-ca")
	return other.issue(t, "foreign", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, time.Now().Add(24*time.Hour))
}

func (p *PKI) issue(t testing.TB, name string, usage []x509.ExtKeyUsage, notAfter time.Time) CertFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generating %s key: %v", name, err)
	}
	serial := p.serial.Add(1)
	notBefore := time.Now().Add(-time.Hour)
	if notAfter.Before(notBefore) {
		notBefore = notAfter.Add(-time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "migtrace test " + name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatalf("creating %s certificate: %v", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("encoding %s key: %v", name, err)
	}
	base := name + "-" + big.NewInt(serial).String()
	return CertFiles{
		CertFile: p.writePEM(t, base+".crt", "CERTIFICATE", der),
		KeyFile:  p.writePEM(t, base+".key", "PRIVATE KEY", keyDER),
	}
}

func (p *PKI) writePEM(t testing.TB, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	data := pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	return path
}
