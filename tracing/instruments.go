package tracing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/migtrace/migtrace/tracing/schema"
)

// MetricKind is the OTel instrument kind behind a metric.
type MetricKind uint8

// The instrument kinds migtrace uses.
const (
	KindHistogram MetricKind = iota + 1
	KindCounter
	KindGauge
)

// String returns "histogram", "counter" or "gauge".
func (k MetricKind) String() string {
	switch k {
	case KindHistogram:
		return "histogram"
	case KindCounter:
		return "counter"
	case KindGauge:
		return "gauge"
	}
	return fmt.Sprintf("MetricKind(%d)", uint8(k))
}

// MetricInfo describes one metric migtrace publishes.
type MetricInfo struct {
	Name        string // OTel name, a schema.Metric* constant
	Unit        string // UCUM unit, a schema.Unit* constant
	Kind        MetricKind
	Description string
	Buckets     []float64 // explicit histogram boundaries; nil otherwise
	Attributes  []string  // attribute keys recorded with it
}

// metricInfos is the one table of what each instrument is; Instruments,
// the Prometheus names and the docs test all read it.
var metricInfos = []MetricInfo{
	{schema.MetricPhaseDuration, schema.UnitSeconds, KindHistogram,
		"Duration of one migration phase on one side.", schema.DurationBuckets,
		[]string{schema.AttrRole, schema.AttrPhase, schema.AttrResult}},
	{schema.MetricRAMTransferred, schema.UnitBytes, KindCounter,
		"Guest RAM payload bytes moved, by whether the VM was paused.", nil,
		[]string{schema.AttrRole, schema.AttrRAMPaused}},
	{schema.MetricMigrations, schema.UnitMigrations, KindCounter,
		"Migrations finished, by role and result.", nil,
		[]string{schema.AttrRole, schema.AttrResult}},
	{schema.MetricDowntime, schema.UnitSeconds, KindHistogram,
		"Source downtime: VM pause to handoff.", schema.DurationBuckets, nil},
	{schema.MetricBlackout, schema.UnitSeconds, KindHistogram,
		"Guest blackout: pause on the source to resume on the destination.", schema.DurationBuckets, nil},
	{schema.MetricPrecopyRounds, schema.UnitRounds, KindHistogram,
		"Pre-copy RAM push rounds per migration.", schema.RoundBuckets,
		[]string{schema.AttrRole}},
	{schema.MetricTSCAdjustment, schema.UnitTicks, KindHistogram,
		"Guest TSC ticks added by a time-data stage.", schema.TickBuckets,
		[]string{schema.AttrTimeStage}},
	{schema.MetricClockOffset, schema.UnitSeconds, KindGauge,
		"Last estimate of the destination's wall clock minus the source's.", nil, nil},
	{schema.MetricClockOffsetError, schema.UnitSeconds, KindGauge,
		"Error bound of the last clock-offset estimate.", nil, nil},
	{schema.MetricThrottle, schema.UnitPercent, KindGauge,
		"Auto-converge's throttle of the migrating guest's vCPUs: share of their time asleep, 0 when lifted.", nil,
		[]string{schema.AttrRole}},
	{schema.MetricMemoryLate, schema.UnitChecks, KindCounter,
		"Comparisons of all guest memory made after the handoff, by result; a mismatch means a guest runs on memory that differs from its source's.", nil,
		[]string{schema.AttrMemoryLateResult}},
}

// Metrics returns a description of every metric Instruments records.
func Metrics() []MetricInfo {
	out := make([]MetricInfo, len(metricInfos))
	copy(out, metricInfos)
	return out
}

// Instruments records migtrace's metrics. A nil *Instruments is valid and
// records nothing; every method is safe for concurrent use.
type Instruments struct {
	phaseDuration  metric.Float64Histogram
	ramTransferred metric.Int64Counter
	migrations     metric.Int64Counter
	downtime       metric.Float64Histogram
	blackout       metric.Float64Histogram
	precopyRounds  metric.Int64Histogram
	tscAdjustment  metric.Float64Histogram
	clockOffset    metric.Float64Gauge
	clockOffsetErr metric.Float64Gauge
	throttle       metric.Float64Gauge
	memoryLate     metric.Int64Counter

	// Attribute sets for the known roles, phases, stages and results, built
	// once so that recording does not allocate. Indexed by the enum values.
	phaseOpts     [3][10][3][]metric.RecordOption // role, phase, resultIndex
	ramOpts       [3][2][]metric.AddOption        // role, paused
	migrationOpts [3][3][]metric.AddOption        // role, resultIndex
	precopyOpts   [3][]metric.RecordOption        // role, for the round and throttle metrics
	tscOpts       [4][]metric.RecordOption        // stage
}

// NewInstruments creates the instruments on mp's meter for
// schema.ScopeName, with the names, units and buckets of package schema.
func NewInstruments(mp metric.MeterProvider) (*Instruments, error) {
	m := mp.Meter(schema.ScopeName)
	in := &Instruments{}
	var errs []error
	check := func(name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("creating metric %s: %w", name, err))
		}
	}
	hist := func(info MetricInfo) metric.Float64Histogram {
		h, err := m.Float64Histogram(info.Name, metric.WithUnit(info.Unit),
			metric.WithDescription(info.Description), metric.WithExplicitBucketBoundaries(info.Buckets...))
		check(info.Name, err)
		return h
	}
	counter := func(info MetricInfo) metric.Int64Counter {
		c, err := m.Int64Counter(info.Name, metric.WithUnit(info.Unit), metric.WithDescription(info.Description))
		check(info.Name, err)
		return c
	}
	gauge := func(info MetricInfo) metric.Float64Gauge {
		g, err := m.Float64Gauge(info.Name, metric.WithUnit(info.Unit), metric.WithDescription(info.Description))
		check(info.Name, err)
		return g
	}
	for _, info := range metricInfos {
		switch info.Name {
		case schema.MetricPhaseDuration:
			in.phaseDuration = hist(info)
		case schema.MetricRAMTransferred:
			in.ramTransferred = counter(info)
		case schema.MetricMigrations:
			in.migrations = counter(info)
		case schema.MetricDowntime:
			in.downtime = hist(info)
		case schema.MetricBlackout:
			in.blackout = hist(info)
		case schema.MetricPrecopyRounds:
			h, err := m.Int64Histogram(info.Name, metric.WithUnit(info.Unit),
				metric.WithDescription(info.Description), metric.WithExplicitBucketBoundaries(info.Buckets...))
			check(info.Name, err)
			in.precopyRounds = h
		case schema.MetricTSCAdjustment:
			in.tscAdjustment = hist(info)
		case schema.MetricClockOffset:
			in.clockOffset = gauge(info)
		case schema.MetricClockOffsetError:
			in.clockOffsetErr = gauge(info)
		case schema.MetricThrottle:
			in.throttle = gauge(info)
		case schema.MetricMemoryLate:
			in.memoryLate = counter(info)
		default:
			errs = append(errs, fmt.Errorf("metric %s has no instrument", info.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	for _, r := range []schema.Role{schema.RoleSource, schema.RoleDestination} {
		for _, p := range schema.Phases {
			for i, res := range results {
				in.phaseOpts[r][p][i] = recordOpts(phaseAttrs(r, p, res))
			}
		}
		for paused := range 2 {
			in.ramOpts[r][paused] = addOpts(ramAttrs(r, paused == 1))
		}
		for i, res := range results {
			in.migrationOpts[r][i] = addOpts(migrationAttrs(r, res))
		}
		in.precopyOpts[r] = recordOpts(attribute.NewSet(attribute.String(schema.AttrRole, r.String())))
	}
	for _, s := range schema.Stages {
		in.tscOpts[s] = recordOpts(attribute.NewSet(attribute.String(schema.AttrTimeStage, s.String())))
	}
	return in, nil
}

func recordOpts(set attribute.Set) []metric.RecordOption {
	return []metric.RecordOption{metric.WithAttributeSet(set)}
}

func addOpts(set attribute.Set) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(set)}
}

// results are the values of schema.AttrResult, in the order of the
// attribute sets' result index.
var results = [3]string{schema.ResultSuccess, schema.ResultFailure, schema.ResultCancelled}

func resultOf(failed bool) string {
	if failed {
		return schema.ResultFailure
	}
	return schema.ResultSuccess
}

// resultIndex is result's index in results; false for another value.
func resultIndex(result string) (int, bool) {
	for i, r := range results {
		if r == result {
			return i, true
		}
	}
	return 0, false
}

func phaseAttrs(r schema.Role, p schema.Phase, result string) attribute.Set {
	return attribute.NewSet(
		attribute.String(schema.AttrRole, r.String()),
		attribute.String(schema.AttrPhase, p.String()),
		attribute.String(schema.AttrResult, result),
	)
}

func ramAttrs(r schema.Role, paused bool) attribute.Set {
	return attribute.NewSet(attribute.String(schema.AttrRole, r.String()), attribute.Bool(schema.AttrRAMPaused, paused))
}

func migrationAttrs(r schema.Role, result string) attribute.Set {
	return attribute.NewSet(attribute.String(schema.AttrRole, r.String()), attribute.String(schema.AttrResult, result))
}

func roleIndex(r schema.Role) (int, bool) {
	return int(r), r == schema.RoleSource || r == schema.RoleDestination
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PhaseDone records that phase p on the side in role r took d, failing or
// not.
func (in *Instruments) PhaseDone(ctx context.Context, r schema.Role, p schema.Phase, d time.Duration, failed bool) {
	in.phaseDone(ctx, r, p, d, resultOf(failed))
}

// PhaseCancelled records that phase p on the side in role r ran for d
// before an operator cancelled the migration: its result is
// schema.ResultCancelled, so a cancellation never counts as a failed
// phase.
func (in *Instruments) PhaseCancelled(ctx context.Context, r schema.Role, p schema.Phase, d time.Duration) {
	in.phaseDone(ctx, r, p, d, schema.ResultCancelled)
}

func (in *Instruments) phaseDone(ctx context.Context, r schema.Role, p schema.Phase, d time.Duration, result string) {
	if in == nil {
		return
	}
	var opts []metric.RecordOption
	ri, ok := roleIndex(r)
	if i, known := resultIndex(result); ok && known && p.Valid() {
		opts = in.phaseOpts[ri][p][i]
	} else {
		opts = recordOpts(phaseAttrs(r, p, result))
	}
	in.phaseDuration.Record(ctx, d.Seconds(), opts...)
}

// RAMTransferred adds bytes of guest RAM moved while the VM was paused or
// running. Negative counts are ignored: counters only go up.
func (in *Instruments) RAMTransferred(ctx context.Context, r schema.Role, paused bool, bytes int64) {
	if in == nil || bytes < 0 {
		return
	}
	var opts []metric.AddOption
	if ri, ok := roleIndex(r); ok {
		opts = in.ramOpts[ri][boolIndex(paused)]
	} else {
		opts = addOpts(ramAttrs(r, paused))
	}
	in.ramTransferred.Add(ctx, bytes, opts...)
}

// MigrationDone counts one finished migration with result
// schema.ResultSuccess, schema.ResultFailure or schema.ResultCancelled.
func (in *Instruments) MigrationDone(ctx context.Context, r schema.Role, result string) {
	if in == nil {
		return
	}
	var opts []metric.AddOption
	ri, ok := roleIndex(r)
	if i, known := resultIndex(result); ok && known {
		opts = in.migrationOpts[ri][i]
	} else {
		opts = addOpts(migrationAttrs(r, result))
	}
	in.migrations.Add(ctx, 1, opts...)
}

// Downtime records the source's pause-to-handoff time.
func (in *Instruments) Downtime(ctx context.Context, d time.Duration) {
	if in == nil {
		return
	}
	in.downtime.Record(ctx, d.Seconds())
}

// Blackout records the guest's pause-to-resume time across both hosts.
func (in *Instruments) Blackout(ctx context.Context, d time.Duration) {
	if in == nil {
		return
	}
	in.blackout.Record(ctx, d.Seconds())
}

// PrecopyRounds records how many pre-copy rounds a migration ran.
func (in *Instruments) PrecopyRounds(ctx context.Context, r schema.Role, n int) {
	if in == nil {
		return
	}
	var opts []metric.RecordOption
	if ri, ok := roleIndex(r); ok {
		opts = in.precopyOpts[ri]
	} else {
		opts = recordOpts(attribute.NewSet(attribute.String(schema.AttrRole, r.String())))
	}
	in.precopyRounds.Record(ctx, int64(n), opts...)
}

// TSCAdjustment records the guest TSC ticks a time-data stage added.
// Values above 2^53 lose precision as a float; histogram buckets end at
// 1e12 ticks, so nothing that matters is lost.
func (in *Instruments) TSCAdjustment(ctx context.Context, s schema.Stage, ticks uint64) {
	if in == nil {
		return
	}
	var opts []metric.RecordOption
	if s >= schema.StageMigration && s <= schema.StageKernel {
		opts = in.tscOpts[s]
	} else {
		opts = recordOpts(attribute.NewSet(attribute.String(schema.AttrTimeStage, s.String())))
	}
	in.tscAdjustment.Record(ctx, float64(ticks), opts...)
}

// ClockOffset sets the clock-offset gauges to the latest estimate of the
// destination's wall clock minus the source's, and its error bound.
func (in *Instruments) ClockOffset(ctx context.Context, offset, bound time.Duration) {
	if in == nil {
		return
	}
	in.clockOffset.Record(ctx, offset.Seconds())
	in.clockOffsetErr.Record(ctx, bound.Seconds())
}

// Throttle sets the throttle gauge of role r to percent, the share of
// time auto-converge makes the guest's vCPUs sleep; 0 when it lifts it.
func (in *Instruments) Throttle(ctx context.Context, r schema.Role, percent int) {
	if in == nil {
		return
	}
	var opts []metric.RecordOption
	if ri, ok := roleIndex(r); ok {
		opts = in.precopyOpts[ri]
	} else {
		opts = recordOpts(attribute.NewSet(attribute.String(schema.AttrRole, r.String())))
	}
	in.throttle.Record(ctx, float64(percent), opts...)
}

// MemoryLate counts one comparison of guest memory made after the
// handoff, with its result, a schema.MemoryLate* value.
func (in *Instruments) MemoryLate(ctx context.Context, result string) {
	if in == nil {
		return
	}
	in.memoryLate.Add(ctx, 1, metric.WithAttributes(attribute.String(schema.AttrMemoryLateResult, result)))
}
