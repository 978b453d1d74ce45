package sim_test

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMain fails the run if any vCPU goroutine outlives the tests: every
// VM a test makes must be destroyed, and Destroy must stop its vCPUs.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := lingeringVCPUs(time.Second); leaked != "" {
			fmt.Fprintf(os.Stderr, "vCPU goroutines still running after the tests:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// lingeringVCPUs waits up to timeout for vCPU goroutines to end and
// returns the stacks of those that did not.
func lingeringVCPUs(timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked [][]byte
		for _, g := range bytes.Split(buf, []byte("\n\n")) {
			if bytes.Contains(g, []byte("sim.(*VM).runVCPU")) {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 || time.Now().After(deadline) {
			return string(bytes.Join(leaked, []byte("\n\n")))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
