package timeline

import (
	"errors"
	"testing"
)

func TestParseWallclock(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"1683850713.581965192", 1683850713581965192, false},
		{"1683850713.5", 1683850713500000000, false},
		{"12", 12e9, false},
		{"", 0, true},
		{".5", 0, true},
		{"-1.5", 0, true},
		{"1.-5", 0, true},
		{"1.1234567890", 0, true},
		{"x.1", 0, true},
		{"9223372037.0", 0, true}, // past int64 ns
	}
	for _, tt := range tests {
		got, err := parseWallclock(tt.in)
		if tt.err {
			if !errors.Is(err, errWallclock) {
				t.Errorf("parseWallclock(%q) = %d, %v; want an error", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseWallclock(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestPercent(t *testing.T) {
	for _, tt := range []struct {
		part, whole int64
		want        string
	}{{0, 10, "0%"}, {1, 1000, "<1%"}, {5, 1000, "<1%"}, {6, 1000, "1%"}, {252, 277, "91%"}, {10, 10, "100%"}} {
		if got := percent(tt.part, tt.whole); got != tt.want {
			t.Errorf("percent(%d, %d) = %q, want %q", tt.part, tt.whole, got, tt.want)
		}
	}
}
