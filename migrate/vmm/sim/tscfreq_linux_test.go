package sim

import (
	"path/filepath"
	"testing"
)

func TestReadHostTSCFrequency(t *testing.T) {
	tests := []struct {
		root   string
		wantHz uint64
		wantOK bool
	}{
		{"khz", 2_649_958_000, true},
		{"intel", 2_400_000_000, true},
		{"vm", 2_445_402_000, true},
		{"scaled", 0, false},   // cpu MHz is the scaled core clock
		{"unstable", 0, false}, // no constant_tsc
		{"missing", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.root, func(t *testing.T) {
			root := filepath.Join("testdata", "tscfreq", tc.root)
			hz, ok := readHostTSCFrequency(filepath.Join(root, "sys"), filepath.Join(root, "proc"))
			if hz != tc.wantHz || ok != tc.wantOK {
				t.Errorf("got %d Hz, %v; want %d Hz, %v", hz, ok, tc.wantHz, tc.wantOK)
			}
		})
	}
}

func TestParseScaled(t *testing.T) {
	tests := []struct {
		in   string
		unit uint64
		want uint64
		ok   bool
	}{
		{"2.50", 1e9, 2_500_000_000, true},
		{"2445.402", 1e6, 2_445_402_000, true},
		{"3", 1e9, 3_000_000_000, true},
		{"1.0000000001", 1e9, 1_000_000_000, true}, // sub-Hz digits dropped
		{"", 1e6, 0, false},
		{".5", 1e9, 0, false},
		{"2.5x", 1e9, 0, false},
		{"-1", 1e9, 0, false},
		{"0.000", 1e6, 0, false},
	}
	for _, tc := range tests {
		got, ok := parseScaled(tc.in, tc.unit)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseScaled(%q, %d) = %d, %v; want %d, %v", tc.in, tc.unit, got, ok, tc.want, tc.ok)
		}
	}
}
