package wiretest_test

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/migrate/wire/wiretest"
)

func TestPKI(t *testing.T) {
	pki := wiretest.NewPKI(t)
	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file holds no certificate")
	}
	tests := []struct {
		name    string
		files   wiretest.CertFiles
		usage   x509.ExtKeyUsage
		wantErr string
	}{
		{"server", pki.Server(t), x509.ExtKeyUsageServerAuth, ""},
		{"client", pki.Client(t), x509.ExtKeyUsageClientAuth, ""},
		{"expired", pki.Expired(t), x509.ExtKeyUsageClientAuth, "expired"},
		{"foreign", pki.Foreign(t), x509.ExtKeyUsageClientAuth, "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pair, err := tls.LoadX509KeyPair(tt.files.CertFile, tt.files.KeyFile)
			if err != nil {
				t.Fatalf("loading the pair: %v", err)
			}
			_, err = pair.Leaf.Verify(x509.VerifyOptions{
				DNSName:   "localhost",
				Roots:     roots,
				KeyUsages: []x509.ExtKeyUsage{tt.usage},
			})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("verify: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("verify err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestTCPPair(t *testing.T) {
	a, b := wiretest.TCPPair(t)
	if _, err := a.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := b.Read(buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
}
