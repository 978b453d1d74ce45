package servertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// RunTimeout bounds a command Run runs, so a hung one fails the test
// instead of stalling it.
const RunTimeout = 2 * time.Minute

// Result is what a finished command printed and its exit status.
type Result struct {
	Args           []string
	Stdout, Stderr string
	Code           int
}

// String shows the whole result, for failure messages.
func (r Result) String() string {
	return fmt.Sprintf("migtrace %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// Run runs `bin args...` to its end and returns what it printed and its
// exit status, whatever that is. It fails tb only if the command cannot
// start or runs longer than RunTimeout.
func Run(tb testing.TB, bin string, args ...string) Result {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), RunTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Args: args, Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		tb.Fatalf("still running after %v; killed\n%s", RunTimeout, r)
	case errors.As(err, &exit):
		r.Code = exit.ExitCode()
	case err != nil:
		tb.Fatalf("running %s: %v", bin, err)
	}
	return r
}

// Migrate runs `bin migrate --from from --to to args...`, as Run.
func Migrate(tb testing.TB, bin, from, to string, args ...string) Result {
	tb.Helper()
	return Run(tb, bin, append([]string{"migrate", "--from", from, "--to", to}, args...)...)
}
