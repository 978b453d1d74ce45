package bpftrace_test

import (
	"os"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/probes/probetest"
)

func TestMain(m *testing.M) { os.Exit(probetest.RunMain(m)) }

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestScripts attaches each script to a target running the seed migration
// (source, then destination) and compares its tables with the ones report
// renders for the same migration (checked against the seed captures in
// probes/events). bpftrace finds symbols only in .symtab, so stripped
// binaries are out of its reach (`migtrace trace` reads .gopclntab).
func TestScripts(t *testing.T) {
	phases := readFile(t, "../events/testdata/source-phases.dtrace") + "\n" +
		readFile(t, "../events/testdata/destination-phases.dtrace")
	tests := []struct {
		script string
		want   string
	}{
		{"live-migration-times.bt", phases},
		{"time-adjustments.bt", readFile(t, "../events/testdata/seed-adjustments.txt")},
	}
	for _, build := range [][]string{nil, {"-buildmode=pie"}} {
		for _, tt := range tests {
			name := tt.script
			if build != nil {
				name += "/pie"
			}
			t.Run(name, func(t *testing.T) {
				probetest.Bpftrace(t)
				bin := probetest.BuildTarget(t, build...)
				p := probetest.Start(t, bin, "seed", "-side", "both")
				bt := probetest.StartBpftrace(t, tt.script, bin, p.PID)
				p.Go(t)
				got := bt.Wait(t)
				if got != tt.want {
					t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
				}
				if strings.Contains(got, "WARNING") {
					t.Errorf("script warned:\n%s", got)
				}
			})
		}
	}
}
