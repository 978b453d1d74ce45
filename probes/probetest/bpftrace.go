package probetest

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BpftraceRun is a bpftrace script attached to a process.
type BpftraceRun struct {
	cmd    *exec.Cmd
	stdout *bufio.Reader
	stderr bytes.Buffer
	out    bytes.Buffer // what the script printed after its banner
	copied chan error   // the copy into out has ended
}

// StartBpftrace runs `bpftrace -p pid script binary pid` and returns once the
// script's BEGIN banner (its first line starting with "tracing") is out,
// which bpftrace prints only after every probe is attached. It skips or
// fails as Bpftrace does when bpftrace is missing.
func StartBpftrace(tb testing.TB, script, binary string, pid int) *BpftraceRun {
	tb.Helper()
	// The scripts filter on the pid themselves: bpftrace 0.17's -p does
	// not restrict uprobes to the process.
	return startBpftrace(tb, pid, script, binary, strconv.Itoa(pid))
}

// StartBpftraceProgram is StartBpftrace for a program given as text (-e);
// it must print a line starting with "tracing" and a blank line in BEGIN.
func StartBpftraceProgram(tb testing.TB, program string, pid int) *BpftraceRun {
	tb.Helper()
	return startBpftrace(tb, pid, "-e", program)
}

func startBpftrace(tb testing.TB, pid int, args ...string) *BpftraceRun {
	tb.Helper()
	bt := Bpftrace(tb)
	script := strings.Join(args, " ")
	r := &BpftraceRun{cmd: exec.Command(bt, append([]string{"-p", strconv.Itoa(pid)}, args...)...)}
	r.cmd.Stderr = &r.stderr
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	r.stdout = bufio.NewReader(out)
	if err := r.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			r.cmd.Process.Kill()
			r.cmd.Wait()
		}
	})
	banner := make(chan error, 1)
	go func() {
		for {
			line, err := r.stdout.ReadString('\n')
			if err != nil {
				banner <- err
				return
			}
			if strings.HasPrefix(line, "tracing") {
				// The blank line after the banner is part of it.
				_, err := r.stdout.ReadString('\n')
				banner <- err
				return
			}
		}
	}()
	select {
	case err := <-banner:
		if err != nil {
			r.cmd.Wait()
			tb.Fatalf("bpftrace %s: no banner (%v); stderr:\n%s", script, err, r.stderr.String())
		}
	case <-time.After(60 * time.Second):
		tb.Fatalf("bpftrace %s: not attached after 60s; stderr:\n%s", script, r.stderr.String())
	}
	// Drain stdout as it comes, so a chatty script never blocks on a full
	// pipe (which would make it drop events).
	r.copied = make(chan error, 1)
	go func() {
		_, err := r.out.ReadFrom(r.stdout)
		r.copied <- err
	}()
	return r
}

// Wait waits for bpftrace to exit, which it does when the traced process
// has, and returns what the script printed after its banner, without the
// blank lines bpftrace adds at exit (one per map).
func (r *BpftraceRun) Wait(tb testing.TB) string {
	tb.Helper()
	if err := <-r.copied; err != nil {
		tb.Fatal(err)
	}
	if err := r.cmd.Wait(); err != nil {
		tb.Fatalf("bpftrace: %v; stderr:\n%s", err, r.stderr.String())
	}
	return strings.TrimRight(r.out.String(), "\n") + "\n"
}
