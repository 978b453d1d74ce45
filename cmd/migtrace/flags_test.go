package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// runWithin is run with a deadline, for commands that would otherwise
// run until stopped (serve): the deadline ends them with status 0.
func runWithin(t *testing.T, d time.Duration, args ...string) (stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out, errb bytes.Buffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	code = exitCode(root.ExecuteContext(ctx), &errb)
	return errb.String(), code
}

// Out-of-range tuning values and addresses are usage errors naming the
// flag. Before, negative or zero values silently became the defaults,
// rates past int64 wrapped negative (no cap at all), and --listen with
// port 70000 failed as a runtime error (exit 1) when serve listened.
func TestOutOfRangeFlagsAreUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"negative --max-rounds", []string{"serve", "--listen", "127.0.0.1:0", "--max-rounds", "-5"}, []string{`"--max-rounds"`, "at least 1"}},
		{"zero --max-rounds", []string{"serve", "--listen", "127.0.0.1:0", "--max-rounds", "0"}, []string{`"--max-rounds"`, "at least 1"}},
		{"negative --io-timeout", []string{"serve", "--listen", "127.0.0.1:0", "--io-timeout", "-1s"}, []string{`"--io-timeout"`, "more than 0"}},
		{"zero --io-timeout", []string{"serve", "--listen", "127.0.0.1:0", "--io-timeout", "0s"}, []string{`"--io-timeout"`, "more than 0"}},
		{"negative --downtime-target", []string{"serve", "--listen", "127.0.0.1:0", "--downtime-target", "-1s"}, []string{`"--downtime-target"`, "more than 0"}},
		{"--max-bandwidth past int64", []string{"serve", "--listen", "127.0.0.1:0", "--max-bandwidth", "9000000TiB"}, []string{`"--max-bandwidth"`, "too large"}},
		{"--dirty-rate past int64", []string{"serve", "--listen", "127.0.0.1:0", "--dirty-rate", "8388608TiB/s"}, []string{`"--dirty-rate"`, "too large"}},
		{"--cpu-throttle-initial 100", []string{"serve", "--listen", "127.0.0.1:0", "--cpu-throttle-initial", "100"}, []string{`"--cpu-throttle-initial"`, "1 to 99"}},
		{"--max-cpu-throttle 0", []string{"serve", "--listen", "127.0.0.1:0", "--max-cpu-throttle", "0"}, []string{`"--max-cpu-throttle"`, "1 to 99"}},
		{"--cpu-throttle-increment ten", []string{"serve", "--listen", "127.0.0.1:0", "--cpu-throttle-increment", "ten"}, []string{`"--cpu-throttle-increment"`, "whole number"}},
		{"demo: negative --max-rounds", []string{"demo", "--max-rounds", "-5"}, []string{`"--max-rounds"`, "at least 1"}},
		{"--listen port 70000", []string{"serve", "--listen", "127.0.0.1:70000"}, []string{"--listen", `port "70000"`, "0 to 65535"}},
		{"--listen port -1", []string{"serve", "--listen", "127.0.0.1:-1"}, []string{"--listen", `port "-1"`}},
		{"--from port 70000", []string{"migrate", "--from", "127.0.0.1:70000", "--to", "127.0.0.1:1"}, []string{"--from", `port "70000"`}},
		{"--to port 0", []string{"migrate", "--from", "127.0.0.1:1", "--to", "127.0.0.1:0"}, []string{"--to", "1 to 65535"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errOut, code := runWithin(t, 3*time.Second, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d: %s", code, exitUsage, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not say %q", errOut, w)
				}
			}
		})
	}
}
