package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// lookTool finds an iproute2 tool, also in the sbin directories a
// non-login PATH may lack.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err := exec.LookPath(dir + "/" + name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH, /usr/sbin or /sbin", name)
}

// runTool runs ip or tc from the root namespace; -n NS in args reaches
// into a host's. The error wraps ErrCommand with the command line and its
// stderr.
func runTool(ctx context.Context, tool string, args ...string) (string, error) {
	path, err := lookTool(tool)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s %s: %v: %s", ErrCommand, tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
