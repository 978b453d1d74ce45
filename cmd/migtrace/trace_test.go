package main

import (
	"strings"
	"testing"
)

func TestTraceUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no pid", []string{"trace", "phases"}, "--pid"},
		{"bad pid", []string{"trace", "adjustments", "--pid", "-3"}, "--pid"},
		{"bad count", []string{"trace", "phases", "--pid", "1", "--count", "-1"}, "--count"},
		{"bad output", []string{"trace", "phases", "--pid", "1", "-o", "xml"}, "--output"},
		{"stray argument", []string{"trace", "phases", "--pid", "1", "extra"}, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d mentioning %q", code, stderr, exitUsage, tt.want)
			}
		})
	}
}
