package wire_test

import (
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/migrate/wire/wiretest"
)

func TestCheckCertificate(t *testing.T) {
	pki := wiretest.NewPKI(t)
	peer, expired, foreign := pki.Peer(t), pki.Expired(t), pki.Foreign(t)
	now := time.Now()
	tests := []struct {
		name  string
		files wiretest.CertFiles
		at    time.Time
		want  []string // nil: accepted
	}{
		{"signed and current", peer, now, nil},
		{"expired", expired, now, []string{expired.CertFile, "expired at"}},
		{"not yet valid", peer, now.Add(-48 * time.Hour), []string{peer.CertFile, "not valid until"}},
		{"another CA's", foreign, now, []string{foreign.CertFile, "not signed by the CA in " + pki.CAFile, "unknown authority"}},
		{"no such file", wiretest.CertFiles{CertFile: "/nonexistent.crt", KeyFile: peer.KeyFile}, now, []string{"/nonexistent.crt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := wire.CheckCertificate(tc.files.CertFile, tc.files.KeyFile, pki.CAFile, tc.at)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
