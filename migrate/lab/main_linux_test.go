package lab_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/migtrace/migtrace/migrate/lab"
)

// helperEnv makes the test binary, run inside a host, print that host's
// clocks instead of running tests.
const helperEnv = "MTLAB_TEST_HELPER"

// binary is the migtrace command the hosts serve with, built once.
var migtraceBin string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "clocks" {
		var mono, boot unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(mono.Nano(), boot.Nano())
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	// Without a lab every test skips; building would be wasted.
	if lab.Available() == nil {
		dir, err := os.MkdirTemp("", "mtlab-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		migtraceBin = filepath.Join(dir, "migtrace")
		out, err := exec.Command("go", "build", "-o", migtraceBin, "github.com/migtrace/migtrace/cmd/migtrace").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building migtrace: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}
