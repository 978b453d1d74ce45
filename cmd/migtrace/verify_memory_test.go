package main

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/schema"
)

// A link that corrupts page data where no frame checksum looks: each
// memory verification catches it where its guarantee says (docs/protocol.md
// §5), and migrate never exits 0 on memory that differed. With full the
// migration fails before the handoff and the guest runs on at the source;
// with after the guest runs on the destination, and migrate says loudly
// that its memory differs, exiting 1.
func TestMigrateOverACorruptingLink(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := servertest.Binary(t)
	for _, tc := range []struct {
		verify   string
		runsOn   string // "source" or "destination"
		stderr   string
		lateJSON string
	}{
		{"full", "source", "memory", ""},
		{"after", "destination", "GUEST MEMORY DIFFERS", schema.MemoryLateMismatch},
	} {
		t.Run(tc.verify, func(t *testing.T) {
			t.Parallel()
			src := servertest.Start(t, bin, servertest.Options{Name: "src", Args: []string{"--boot", "--memory", "24MiB",
				"--dirty-rate", "8MiB", "--verify-memory", tc.verify}})
			dst := servertest.Start(t, bin, servertest.Options{Name: "dst", Args: []string{"--memory", "24MiB"}})
			time.Sleep(time.Second) // the guest writes data into its pages
			link := servertest.NewFrameProxy(t, src.Addr())
			// The first round's runs of data, but for the first: the TSC
			// ring, at the start of memory, which a corrupt copy of would
			// fail the continuity check before any memory check; the
			// guest rewrites few of the others before the last round.
			var rounds, runs atomic.Int32
			link.SetOnFrame(func(d servertest.Direction, typ wire.Type) servertest.Action {
				if d != servertest.ToDestination {
					return servertest.Forward
				}
				switch typ {
				case wire.TypeRoundBegin:
					rounds.Add(1)
				case wire.TypePageData:
					if rounds.Load() == 1 && runs.Add(1) > 1 {
						return servertest.ForwardCorrupted
					}
				}
				return servertest.Forward
			})
			r := servertest.Migrate(t, bin, link.Addr(), dst.Addr(), "-o", "json")
			if r.Code == 0 || !strings.Contains(r.Stderr, tc.stderr) {
				t.Fatalf("migrate over a corrupting link: want a failure saying %q; %s", tc.stderr, r)
			}
			var out struct {
				Result             string `json:"result"`
				VMRunsOn           string `json:"vm_runs_on"`
				MemoryAfterHandoff string `json:"memory_after_handoff"`
			}
			if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
				t.Fatalf("migrate -o json: %v\n%s", err, r)
			}
			if out.MemoryAfterHandoff != tc.lateJSON {
				t.Errorf("memory_after_handoff %q, want %q", out.MemoryAfterHandoff, tc.lateJSON)
			}
			srcSt, dstSt := src.Status(t), dst.Status(t)
			switch tc.runsOn {
			case "source":
				if srcSt.State != server.StateRunning || dstSt.State == server.StateRunning || out.Result == schema.ResultSuccess {
					t.Errorf("want the guest on the source only: source %s, destination %s, result %s", srcSt.State, dstSt.State, out.Result)
				}
			case "destination":
				if dstSt.State != server.StateRunning || srcSt.State == server.StateRunning || out.VMRunsOn != dst.Addr() {
					t.Errorf("want the guest on the destination only: source %s, destination %s, vm_runs_on %q", srcSt.State, dstSt.State, out.VMRunsOn)
				}
				if d := dstSt.Migration.Detail; d == nil || d.Verified() {
					t.Errorf("the destination's record calls the migration verified: %+v", d)
				}
				st := servertest.Run(t, bin, "status", "--server", dst.Addr())
				if want := "memory:    compared after the handoff, mismatch: GUEST MEMORY DIFFERS"; !strings.Contains(st.Stdout+st.Stderr, want) {
					t.Errorf("migtrace status does not say %q: %s", want, st)
				}
			}
			t.Logf("verify %s: exit %d, stderr:\n%s", tc.verify, r.Code, r.Stderr)
		})
	}
}
