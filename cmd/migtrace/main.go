// Command migtrace migrates VMs live and shows every phase of it: see
// `migtrace --help` and README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err (unless it was already reported) and maps it to the
// process exit status: 0 success, 2 usage errors, otherwise 1 or the code
// an *exitError carries.
func exitCode(err error, stderr interface{ Write([]byte) (int, error) }) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if !ee.silent && ee.err != nil {
			fmt.Fprintln(stderr, "migtrace:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "migtrace:", err)
	return 1
}
