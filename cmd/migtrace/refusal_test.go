package main

import (
	"strings"
	"testing"
)

// A server's reason for a 409 reaches migrate's message, whether the
// destination refused the request (POST /v1/migrate) or the source
// refused the destination's stream (its upgrade). The stream's reason
// used to arrive as "409 Conflict: {", the first line of indented JSON.
func TestMigratePrintsRefusalReason(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	running, _ := serveProcess(t, "--boot", "--memory", "16MiB", "--name", "running")
	waiting, _ := serveProcess(t, "--name", "waiting")
	empty, _ := serveProcess(t, "--name", "empty")
	tests := []struct {
		name, from, to string
		want           []string
	}{
		{"destination already runs a VM", waiting, running, []string{"409 Conflict", "instance busy: cannot migrate in while running"}},
		{"source has no VM", empty, waiting, []string{"phase Sync", "409 Conflict: no VM to migrate: instance is waiting"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(t, "migrate", "--from", tc.from, "--to", tc.to)
			if code != exitFailure {
				t.Errorf("exit %d, want %d", code, exitFailure)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("migrate's message does not say %q:\n%s", w, errOut)
				}
			}
		})
	}
}
