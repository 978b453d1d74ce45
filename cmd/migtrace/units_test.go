package main

import "testing"

func TestParseIEC(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"4096", 4096, false},
		{"64MiB", 64 << 20, false},
		{"1GiB", 1 << 30, false},
		{"2K", 2048, false},
		{"3 MiB", 3 << 20, false},
		{"0", 0, false},
		{"", 0, true},
		{"MiB", 0, true},
		{"1.5GiB", 0, true},
		{"-1", 0, true},
		{"64MB", 0, true},
		{"99999999999TiB", 0, true},
	}
	for _, tc := range tests {
		got, err := parseIEC(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseIEC(%q) = %d, %v; want %d, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	var r rateFlag
	if err := r.Set("64MiB/s"); err != nil || r.bytesPerSec != 64<<20 || r.String() != "64MiB/s" {
		t.Errorf("rate 64MiB/s: %v %d %s", err, r.bytesPerSec, r.String())
	}
}
