package lab_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/migtrace/migtrace/migrate/lab"
)

func clockNs(t *testing.T, id int32) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano()
}

// A host with a MonotonicOffset runs its processes with CLOCK_MONOTONIC
// and CLOCK_BOOTTIME shifted by it: a process inside reads a value
// between this process's readings just before and after, plus the
// offset. serve runs in a time namespace with exactly those offsets.
func TestMonotonicOffset(t *testing.T) {
	if err := lab.TimeNamespaces(); err != nil {
		t.Skip(err)
	}
	tests := []struct {
		name   string
		offset time.Duration
	}{
		{"ahead 7.5s", 7500 * time.Millisecond},
		{"behind 1.25s", -1250 * time.Millisecond},
		{"none", 0},
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 60*time.Second)
	l := newLab(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := addHost(t, ctx, l, fmt.Sprintf("clock%d", i), lab.HostOptions{MonotonicOffset: tc.offset})
			off := int64(tc.offset)

			mono0, boot0 := clockNs(t, unix.CLOCK_MONOTONIC), clockNs(t, unix.CLOCK_BOOTTIME)
			out, err := h.Run(ctx, "env", helperEnv+"=clocks", self)
			mono1, boot1 := clockNs(t, unix.CLOCK_MONOTONIC), clockNs(t, unix.CLOCK_BOOTTIME)
			if err != nil {
				t.Fatal(err)
			}
			var mono, boot int64
			if _, err := fmt.Sscan(string(out), &mono, &boot); err != nil {
				t.Fatalf("helper printed %q: %v", out, err)
			}
			t.Logf("offset %v: inside CLOCK_MONOTONIC − outside ≈ %v (bracket %v), CLOCK_BOOTTIME ≈ %v",
				tc.offset, time.Duration(mono-(mono0+mono1)/2), time.Duration(mono1-mono0), time.Duration(boot-(boot0+boot1)/2))
			if mono < mono0+off || mono > mono1+off {
				t.Errorf("CLOCK_MONOTONIC inside %d, want within [%d, %d]", mono, mono0+off, mono1+off)
			}
			if boot < boot0+off || boot > boot1+off {
				t.Errorf("CLOCK_BOOTTIME inside %d, want within [%d, %d]", boot, boot0+off, boot1+off)
			}

			// /proc/uptime is CLOCK_BOOTTIME to 10 ms, read by cat.
			b0 := clockNs(t, unix.CLOCK_BOOTTIME)
			out, err = h.Run(ctx, "cat", "/proc/uptime")
			b1 := clockNs(t, unix.CLOCK_BOOTTIME)
			if err != nil {
				t.Fatal(err)
			}
			f := strings.Fields(string(out))
			up, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				t.Fatalf("/proc/uptime %q: %v", out, err)
			}
			if got := int64(up * 1e9); got < b0+off-10e6 || got > b1+off {
				t.Errorf("uptime inside %.2f s, want within [%.3f, %.3f]", up, float64(b0+off-10e6)/1e9, float64(b1+off)/1e9)
			}

			if err := h.Serve(ctx, "--memory", "4MiB"); err != nil {
				t.Fatal(err)
			}
			offsets, err := os.ReadFile(fmt.Sprintf("/proc/%d/timens_offsets", h.Pid()))
			if err != nil {
				t.Fatal(err)
			}
			sec, nsec := off/1e9, off%1e9
			if nsec < 0 {
				sec, nsec = sec-1, nsec+1e9
			}
			want := fmt.Sprintf("monotonic %12d %9d\nboottime %13d %9d\n", sec, nsec, sec, nsec)
			if normalise(string(offsets)) != normalise(want) {
				t.Errorf("serve's time namespace offsets:\n%s\nwant\n%s", offsets, want)
			}
		})
	}
}

// normalise collapses runs of spaces, which the kernel uses for alignment.
func normalise(s string) string {
	var lines []string
	for line := range strings.Lines(s) {
		lines = append(lines, strings.Join(strings.Fields(line), " "))
	}
	return strings.Join(lines, "\n")
}

// An offset that takes a clock below zero is refused when the host runs
// something, naming the offset.
func TestMonotonicOffsetOutOfRange(t *testing.T) {
	if err := lab.TimeNamespaces(); err != nil {
		t.Skip(err)
	}
	ctx := testCtx(t, 30*time.Second)
	l := newLab(t)
	tooFar := -time.Duration(clockNs(t, unix.CLOCK_MONOTONIC)) - time.Hour
	h := addHost(t, ctx, l, "past", lab.HostOptions{MonotonicOffset: tooFar})
	_, err := h.Run(ctx, "true")
	if err == nil || !strings.Contains(err.Error(), "below zero") {
		t.Errorf("running with monotonic offset %v: %v, want a refusal naming a clock below zero", tooFar, err)
	}
}
