package server

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire/wiretest"
	"github.com/migtrace/migtrace/tracing/schema"
)

// A destination and a source that do not trust each other, or do not both
// speak TLS, never start a migration: the destination's error says why in
// terms an operator can act on, the source keeps running its VM with no
// migration recorded, and the destination holds no VM.
func TestRefusedPeersChangeNothing(t *testing.T) {
	pki := wiretest.NewPKI(t)
	goodS, goodC := tlsPair(t, pki, pki.Peer(t))
	foreignS, foreignC := tlsPair(t, pki, pki.Foreign(t))
	expiredS, expiredC := tlsPair(t, pki, pki.Expired(t))

	tests := []struct {
		name string
		// The source server's TLS and the destination's client TLS; nil
		// is plaintext.
		sourceTLS, destTLS *tls.Config
		// Every one of these must appear in the destination's error.
		want []string
	}{
		{"client certificate from another CA", goodS, foreignC, []string{"tls", "certificate"}},
		{"expired client certificate", goodS, expiredC, []string{"tls", "certificate"}},
		{"server certificate from another CA", foreignS, goodC, []string{"x509", "unknown authority"}},
		{"expired server certificate", expiredS, goodC, []string{"x509", "expired"}},
		{"plaintext destination, TLS source", goodS, nil, []string{"HTTPS"}},
		{"TLS destination, plaintext source", nil, goodC, []string{"tls", "does not look like a TLS handshake"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := start(t, true, tc.sourceTLS, nil)
			dst := start(t, false, nil, tc.destTLS)
			srcVM := src.VM()
			tscBefore := src.Status().GuestTSC

			_, err := dst.MigrateFrom(context.Background(), src.addr)
			if err == nil {
				t.Fatal("migration succeeded")
			}
			t.Logf("refused: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}

			st := src.Status()
			if st.State != StateRunning || st.Migration != nil {
				t.Errorf("source: state %s, migration %+v; want running with none", st.State, st.Migration)
			}
			if vm := src.VM(); vm != srcVM || vm.State() != vmm.StateRunning {
				t.Errorf("source VM replaced or stopped: %v", vm)
			}
			if st.GuestTSC <= tscBefore {
				t.Errorf("source guest TSC %d did not advance from %d: the guest is not running", st.GuestTSC, tscBefore)
			}

			dt := dst.Status()
			if dst.VM() != nil || dt.MemoryBytes != 0 {
				t.Errorf("destination holds a VM after a refused migration")
			}
			if dt.State != StateFailed || dt.Migration == nil || dt.Migration.Result != schema.ResultFailure ||
				dt.Migration.ErrorPhase != schema.PhaseSync.String() {
				t.Errorf("destination: state %s, migration %+v; want failed in Sync", dt.State, dt.Migration)
			}
			// The failed destination still waits for a good source.
			if _, err := dst.StartMigration("127.0.0.1:1"); err != nil {
				t.Errorf("destination no longer accepts a migration after a refused one: %v", err)
			}
		})
	}
}
