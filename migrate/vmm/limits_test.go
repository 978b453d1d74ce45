package vmm

import (
	"errors"
	"strings"
	"testing"
)

func TestLimitsCheck(t *testing.T) {
	limits := Limits{Backend: "sim", MaxMemoryBytes: 4 << 30, MaxVCPUs: 2}
	tests := []struct {
		name string
		spec Spec
		want []string // all in the error; none means it fits
	}{
		{"fits", Spec{Backend: "sim", MemoryBytes: 4 << 30, VCPUs: 2}, nil},
		{"1 TiB of memory", Spec{Backend: "sim", MemoryBytes: 1 << 40, VCPUs: 1}, []string{"memory 1 TiB is more than the 4 GiB"}},
		{"too many vcpus", Spec{Backend: "sim", MemoryBytes: 1 << 20, VCPUs: 3}, []string{"3 vcpus is more than the 2"}},
		{"unknown backend", Spec{Backend: "qemu", MemoryBytes: 1 << 20, VCPUs: 1}, []string{`backend "qemu": this host runs only "sim"`}},
		{"everything at once", Spec{Backend: "kvm", MemoryBytes: 8 << 30, VCPUs: 64},
			[]string{`backend "kvm"`, "memory 8 GiB", "64 vcpus"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := limits.Check(tc.spec)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCapacity) {
				t.Fatalf("error %v, want ErrCapacity", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestLimitsWithDefaults(t *testing.T) {
	l := Limits{}.WithDefaults()
	if l.MaxVCPUs < 1 {
		t.Errorf("default vcpus %d", l.MaxVCPUs)
	}
	avail, how := HostMemory()
	if avail == 0 || how == "" {
		t.Errorf("HostMemory() = %d, %q", avail, how)
	}
	// A quarter is kept back, and at least the headroom.
	if l.MaxMemoryBytes >= avail || (l.MaxMemoryBytes > 0 && avail-l.MaxMemoryBytes < memoryHeadroom) {
		t.Errorf("default max guest memory %d leaves too little of %d (%s)", l.MaxMemoryBytes, avail, how)
	}
	// Explicit limits stay.
	if got := (Limits{MaxMemoryBytes: 1 << 20, MaxVCPUs: 3}).WithDefaults(); got.MaxMemoryBytes != 1<<20 || got.MaxVCPUs != 3 {
		t.Errorf("WithDefaults changed explicit limits: %+v", got)
	}
}

func TestFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {4096, "4 KiB"}, {3 << 29, "1.5 GiB"}, {1 << 40, "1 TiB"},
		{10 << 40, "10 TiB"}, {1<<64 - 1, "16 EiB"},
	} {
		if got := FormatBytes(tc.n); got != tc.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
