package main

import (
	"context"
	"errors"
	"testing"
)

func TestParseIEC(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"0", 0, false},
		{"1GiB", 1 << 30, false},
		{"512MiB", 512 << 20, false},
		{"4096", 4096, false},
		{"1.5GiB", 0, true},
		{"GiB", 0, true},
		{"-1", 0, true},
		{"20000000TiB", 0, true},
	}
	for _, tt := range tests {
		got, err := parseIEC(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseIEC(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// Bad flags are usage errors (exit 2), found before anything runs.
func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-cases", "idle512"},
		{"-systems", "xen"},
		{"-max-bandwidth", "fast"},
		{"extra"},
		{"-no-such-flag"},
	} {
		if err := run(context.Background(), args); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}

func TestRunHelp(t *testing.T) {
	if err := run(context.Background(), []string{"-h"}); err != nil {
		t.Errorf("run(-h) = %v, want nil after printing the usage", err)
	}
}

func TestSystemNames(t *testing.T) {
	names := systemNames()
	for _, n := range []string{"qemu", "sim", "sim-skip-checksum", "sim-verify-full", "kvm"} {
		if _, ok := names[n]; !ok {
			t.Errorf("no system %q in %v", n, names)
		}
	}
	if !names["sim-skip-checksum"].SkipMemoryChecksum || names["sim"].SkipMemoryChecksum || !names["qemu"].QEMU ||
		names["sim-verify-full"].VerifyMemory != "full" || names["sim"].VerifyMemory != "" {
		t.Errorf("systems map to the wrong configurations: %+v", names)
	}
}
