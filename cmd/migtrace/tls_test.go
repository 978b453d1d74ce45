package main

import (
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/wire/wiretest"
)

// serve refuses to start with a certificate its peers would refuse: one
// that expired, or one the --tls-ca did not sign. Before, it started and
// failed every migration in the TLS handshake.
func TestServeRefusesItsOwnBadCertificate(t *testing.T) {
	pki := wiretest.NewPKI(t)
	expired, foreign, good := pki.Expired(t), pki.Foreign(t), pki.Peer(t)
	tests := []struct {
		name  string
		files wiretest.CertFiles
		want  []string // nil: serve starts (and runs until the deadline)
	}{
		{"expired", expired, []string{"--tls-cert", expired.CertFile, "expired at"}},
		{"signed by another CA", foreign, []string{"--tls-cert", foreign.CertFile, "not signed by the CA in " + pki.CAFile}},
		{"good", good, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errOut, code := runWithin(t, 2*time.Second, "serve", "--listen", "127.0.0.1:0",
				"--tls-cert", tc.files.CertFile, "--tls-key", tc.files.KeyFile, "--tls-ca", pki.CAFile)
			if tc.want == nil {
				if code != 0 {
					t.Errorf("serve with a good certificate: exit %d: %s", code, errOut)
				}
				return
			}
			if code != exitFailure {
				t.Errorf("exit %d, want %d: %s", code, exitFailure, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
		})
	}
}
