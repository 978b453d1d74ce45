package vmm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHostMemoryArithmetic(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name            string
		avail           uint64
		availOK         bool
		limited         bool
		asLimit, used   uint64
		want            uint64
		wantHowContains string
	}{
		{"MemAvailable", 20 * gib, true, false, 0, 0, 20 * gib, "MemAvailable"},
		{"no MemAvailable", 0, false, false, 0, 0, FallbackHostMemory, "guess"},
		{"4 GiB address space, 1.2 GiB used", 20 * gib, true, true, 4 * gib, 1200 << 20, 4*gib - 1200<<20, "RLIMIT_AS"},
		{"address space already used up", 20 * gib, true, true, gib, 2 * gib, 0, "RLIMIT_AS"},
		{"address space larger than memory", 2 * gib, true, true, 64 * gib, gib, 2 * gib, "MemAvailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, how := hostMemory(tc.avail, tc.availOK, tc.limited, tc.asLimit, tc.used)
			if got != tc.want || !strings.Contains(how, tc.wantHowContains) {
				t.Errorf("hostMemory = %d, %q; want %d, saying %q", got, how, tc.want, tc.wantHowContains)
			}
		})
	}
}

func TestFieldKiB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meminfo")
	data := "MemTotal:       24684092 kB\nMemAvailable:   23175836 kB\nBad:  12\nHuge: 99999999999999999999 kB\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key  string
		want uint64
		ok   bool
	}{
		{"MemAvailable:", 23175836 << 10, true},
		{"MemTotal:", 24684092 << 10, true},
		{"Bad:", 0, false},
		{"Huge:", 0, false},
		{"Missing:", 0, false},
	} {
		got, ok := fieldKiB(path, tc.key)
		if got != tc.want || ok != tc.ok {
			t.Errorf("fieldKiB(%q) = %d, %v; want %d, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
}
