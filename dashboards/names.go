package dashboards

import (
	"errors"
	"fmt"

	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Series suffixes and the bucket label Prometheus gives every histogram
// family; they are Prometheus conventions, not migtrace names.
const (
	suffixBucket = "_bucket"
	suffixSum    = "_sum"
	suffixCount  = "_count"
	labelLe      = "le"
)

// promNames holds the Prometheus spelling of every metric and label the
// dashboards query, resolved through package tracing so that a rename in
// package schema reaches the dashboards at the next `make generate`.
type promNames struct {
	phaseDuration, ramTransferred, migrations, downtime, blackout string
	precopyRounds, tscAdjustment, clockOffset, clockOffsetError   string
	throttle                                                      string
	memoryLate                                                    string

	role, phase, result, ramPaused, stage, memoryLateResult string
}

func resolveNames() (promNames, error) {
	var (
		n    promNames
		errs []error
	)
	metric := func(dst *string, otelName string) {
		name, err := tracing.PrometheusName(otelName)
		if err != nil {
			errs = append(errs, err)
		}
		*dst = name
	}
	label := func(dst *string, key string) {
		name, err := tracing.PrometheusLabel(key)
		if err != nil {
			errs = append(errs, err)
		}
		*dst = name
	}
	metric(&n.phaseDuration, schema.MetricPhaseDuration)
	metric(&n.ramTransferred, schema.MetricRAMTransferred)
	metric(&n.migrations, schema.MetricMigrations)
	metric(&n.downtime, schema.MetricDowntime)
	metric(&n.blackout, schema.MetricBlackout)
	metric(&n.precopyRounds, schema.MetricPrecopyRounds)
	metric(&n.tscAdjustment, schema.MetricTSCAdjustment)
	metric(&n.clockOffset, schema.MetricClockOffset)
	metric(&n.clockOffsetError, schema.MetricClockOffsetError)
	metric(&n.throttle, schema.MetricThrottle)
	metric(&n.memoryLate, schema.MetricMemoryLate)
	label(&n.role, schema.AttrRole)
	label(&n.phase, schema.AttrPhase)
	label(&n.result, schema.AttrResult)
	label(&n.ramPaused, schema.AttrRAMPaused)
	label(&n.stage, schema.AttrTimeStage)
	label(&n.memoryLateResult, schema.AttrMemoryLateResult)
	if err := errors.Join(errs...); err != nil {
		return promNames{}, fmt.Errorf("resolving Prometheus names: %w", err)
	}
	return n, nil
}
