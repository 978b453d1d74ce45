package report_test

import (
	"errors"
	"testing"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
)

func TestRequirePhases(t *testing.T) {
	reversed := reporttest.SeedSource()
	reversed.Phases[3].BeginNs, reversed.Phases[3].EndNs = reversed.Phases[3].EndNs, reversed.Phases[3].BeginNs
	rootOnly := reporttest.SeedDestination()
	rootOnly.Phases = nil
	tests := []struct {
		name string
		side model.Side
		want error
	}{
		{"clean", reporttest.SeedSource(), nil},
		{"a phase ends before it begins", reversed, report.ErrPhaseReversed},
		{"no phases", rootOnly, report.ErrNoPhases},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := report.RequirePhases([]model.Side{tt.side})
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("RequirePhases = %v, want %v", err, tt.want)
			}
		})
	}
}
