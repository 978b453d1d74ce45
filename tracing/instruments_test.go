package tracing

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/migtrace/migtrace/tracing/schema"
)

// recordOneOfEach records a known value through every Instruments method.
func recordOneOfEach(ctx context.Context, in *Instruments) {
	in.PhaseDone(ctx, schema.RoleSource, schema.PhaseSync, 200*time.Millisecond, false)
	in.PhaseDone(ctx, schema.RoleDestination, schema.PhaseTimeData, 30*time.Microsecond, true)
	in.RAMTransferred(ctx, schema.RoleSource, false, 4096)
	in.RAMTransferred(ctx, schema.RoleSource, true, 8192)
	in.RAMTransferred(ctx, schema.RoleSource, true, -5) // ignored
	in.MigrationDone(ctx, schema.RoleSource, schema.ResultSuccess)
	in.MigrationDone(ctx, schema.RoleDestination, schema.ResultFailure)
	in.Downtime(ctx, 40*time.Millisecond)
	in.Blackout(ctx, 45*time.Millisecond)
	in.PrecopyRounds(ctx, schema.RoleSource, 3)
	in.TSCAdjustment(ctx, schema.StageUserspace, 285087)
	in.TSCAdjustment(ctx, schema.StageKernel, 84400)
	in.ClockOffset(ctx, -3*time.Millisecond, 250*time.Microsecond)
	in.ClockOffset(ctx, 2*time.Millisecond, 100*time.Microsecond) // gauges keep the last
	in.Throttle(ctx, schema.RoleSource, 30)
	in.Throttle(ctx, schema.RoleSource, 0) // lifted
	in.MemoryLate(ctx, schema.MemoryLateMatch)
}

func TestPrometheusNames(t *testing.T) {
	// The exporter's translation, spelled out once so a change in
	// otlptranslator or in units shows up here before it breaks dashboards.
	want := map[string]string{
		schema.MetricPhaseDuration:    "migration_phase_duration_seconds",
		schema.MetricRAMTransferred:   "migration_ram_transferred_bytes_total",
		schema.MetricMigrations:       "migration_migrations_total",
		schema.MetricDowntime:         "migration_downtime_seconds",
		schema.MetricBlackout:         "migration_blackout_seconds",
		schema.MetricPrecopyRounds:    "migration_precopy_rounds",
		schema.MetricTSCAdjustment:    "migration_tsc_adjustment",
		schema.MetricClockOffset:      "migration_clock_offset_seconds",
		schema.MetricClockOffsetError: "migration_clock_offset_error_seconds",
		schema.MetricThrottle:         "migration_throttle_percent",
		schema.MetricMemoryLate:       "migration_memory_late_checks_total",
	}
	vars := map[string]string{
		schema.MetricPhaseDuration: PromPhaseDuration, schema.MetricRAMTransferred: PromRAMTransferred,
		schema.MetricMigrations: PromMigrations, schema.MetricDowntime: PromDowntime,
		schema.MetricBlackout: PromBlackout, schema.MetricPrecopyRounds: PromPrecopyRounds,
		schema.MetricTSCAdjustment: PromTSCAdjustment, schema.MetricClockOffset: PromClockOffset,
		schema.MetricClockOffsetError: PromClockOffsetError, schema.MetricThrottle: PromThrottle, schema.MetricMemoryLate: PromMemoryLate,
	}
	if len(want) != len(Metrics()) {
		t.Fatalf("test knows %d metrics, package has %d", len(want), len(Metrics()))
	}
	for _, m := range Metrics() {
		got, err := PrometheusName(m.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got != want[m.Name] || vars[m.Name] != want[m.Name] {
			t.Errorf("%s: PrometheusName %q, variable %q, want %q", m.Name, got, vars[m.Name], want[m.Name])
		}
	}
	if _, err := PrometheusName("migration.nonexistent"); err == nil {
		t.Error("PrometheusName accepted an unknown metric")
	}
	if l, err := PrometheusLabel(schema.AttrRAMPaused); err != nil || l != "migration_ram_paused" {
		t.Errorf("PrometheusLabel = %q, %v", l, err)
	}
}

func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rr.Code != http.StatusOK {
		t.Fatalf("/metrics status %d: %s", rr.Code, rr.Body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(rr.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// findMetric returns the series of fam whose labels include want.
func findMetric(t *testing.T, fam *dto.MetricFamily, want map[string]string) *dto.Metric {
	t.Helper()
	for _, m := range fam.GetMetric() {
		got := labelsOf(m)
		match := true
		for k, v := range want {
			if got[k] != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	t.Fatalf("%s: no series with labels %v", fam.GetName(), want)
	return nil
}

func label(t *testing.T, key string) string {
	t.Helper()
	l, err := PrometheusLabel(key)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestMetricsHandlerServesEveryMetric(t *testing.T) {
	clearOTelEnv(t)
	tel, err := Setup(context.Background(), Config{Prometheus: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	recordOneOfEach(context.Background(), tel.Instruments())
	fams := scrape(t, tel.MetricsHandler())

	wantType := map[MetricKind]dto.MetricType{
		KindHistogram: dto.MetricType_HISTOGRAM, KindCounter: dto.MetricType_COUNTER, KindGauge: dto.MetricType_GAUGE,
	}
	for _, m := range Metrics() {
		name, _ := PrometheusName(m.Name)
		fam, ok := fams[name]
		if !ok {
			t.Errorf("/metrics lacks %s (for %s)", name, m.Name)
			continue
		}
		if fam.GetType() != wantType[m.Kind] {
			t.Errorf("%s: type %v, want %v", name, fam.GetType(), wantType[m.Kind])
		}
	}

	phase := findMetric(t, fams[PromPhaseDuration], map[string]string{
		label(t, schema.AttrRole): "source", label(t, schema.AttrPhase): "Sync", label(t, schema.AttrResult): schema.ResultSuccess,
	})
	h := phase.GetHistogram()
	if h.GetSampleCount() != 1 || math.Abs(h.GetSampleSum()-0.2) > 1e-12 {
		t.Errorf("phase histogram count %d sum %v, want 1, 0.2", h.GetSampleCount(), h.GetSampleSum())
	}
	var bounds []float64
	for _, b := range h.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			bounds = append(bounds, b.GetUpperBound())
		}
		want := uint64(0)
		if b.GetUpperBound() >= 0.2 {
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if !slices.Equal(bounds, schema.DurationBuckets) {
		t.Errorf("phase buckets %v, want schema.DurationBuckets", bounds)
	}
	failed := findMetric(t, fams[PromPhaseDuration], map[string]string{
		label(t, schema.AttrRole): "destination", label(t, schema.AttrPhase): "TimeData", label(t, schema.AttrResult): schema.ResultFailure,
	})
	if failed.GetHistogram().GetSampleCount() != 1 {
		t.Error("failed TimeData phase not counted")
	}

	paused := findMetric(t, fams[PromRAMTransferred], map[string]string{label(t, schema.AttrRAMPaused): "true"})
	if paused.GetCounter().GetValue() != 8192 {
		t.Errorf("paused bytes %v, want 8192", paused.GetCounter().GetValue())
	}
	fail := findMetric(t, fams[PromMigrations], map[string]string{label(t, schema.AttrResult): schema.ResultFailure})
	if fail.GetCounter().GetValue() != 1 {
		t.Errorf("failed migrations %v, want 1", fail.GetCounter().GetValue())
	}
	if v := fams[PromClockOffset].GetMetric()[0].GetGauge().GetValue(); math.Abs(v-0.002) > 1e-12 {
		t.Errorf("clock offset gauge %v, want the last value 0.002", v)
	}
	if v := fams[PromClockOffsetError].GetMetric()[0].GetGauge().GetValue(); math.Abs(v-0.0001) > 1e-12 {
		t.Errorf("clock offset error gauge %v, want 0.0001", v)
	}
	throttle := findMetric(t, fams[PromThrottle], map[string]string{label(t, schema.AttrRole): "source"})
	if v := throttle.GetGauge().GetValue(); v != 0 {
		t.Errorf("throttle gauge %v, want the last value 0 (lifted)", v)
	}
	kernel := findMetric(t, fams[PromTSCAdjustment], map[string]string{label(t, schema.AttrTimeStage): "kernel"})
	if kernel.GetHistogram().GetSampleSum() != 84400 {
		t.Errorf("kernel TSC adjustment sum %v, want 84400", kernel.GetHistogram().GetSampleSum())
	}
}

func TestInstrumentsRecordWhatTheyAreGiven(t *testing.T) {
	clearOTelEnv(t)
	reader := sdkmetric.NewManualReader()
	tel, err := Setup(context.Background(), Config{MetricReaders: []sdkmetric.Reader{reader}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	in := tel.Instruments()
	recordOneOfEach(context.Background(), in)
	// Values outside the known enums still record, under their String form.
	in.PhaseDone(context.Background(), schema.Role(9), schema.Phase(42), time.Second, false)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != schema.ScopeName {
			t.Errorf("scope %q, want %q", sm.Scope.Name, schema.ScopeName)
		}
		for _, m := range sm.Metrics {
			got[m.Name] = m
		}
	}
	for _, info := range Metrics() {
		m, ok := got[info.Name]
		if !ok {
			t.Errorf("metric %s not recorded", info.Name)
			continue
		}
		if m.Unit != info.Unit {
			t.Errorf("%s: unit %q, want %q", info.Name, m.Unit, info.Unit)
		}
		var bounds []float64
		var keys [][]attribute.Key
		switch d := m.Data.(type) {
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				bounds = dp.Bounds
				keys = append(keys, attrKeys(dp.Attributes))
			}
		case metricdata.Histogram[int64]:
			for _, dp := range d.DataPoints {
				bounds = dp.Bounds
				keys = append(keys, attrKeys(dp.Attributes))
			}
		case metricdata.Sum[int64]:
			if !d.IsMonotonic {
				t.Errorf("%s is not monotonic", info.Name)
			}
			for _, dp := range d.DataPoints {
				keys = append(keys, attrKeys(dp.Attributes))
			}
		case metricdata.Gauge[float64]:
			for _, dp := range d.DataPoints {
				keys = append(keys, attrKeys(dp.Attributes))
			}
		default:
			t.Errorf("%s: unexpected data %T", info.Name, m.Data)
		}
		if info.Kind == KindHistogram && !slices.Equal(bounds, info.Buckets) {
			t.Errorf("%s: bounds %v, want %v", info.Name, bounds, info.Buckets)
		}
		wantKeys := make([]attribute.Key, 0, len(info.Attributes))
		for _, k := range info.Attributes {
			wantKeys = append(wantKeys, attribute.Key(k))
		}
		slices.Sort(wantKeys)
		for _, k := range keys {
			if !slices.Equal(k, wantKeys) {
				t.Errorf("%s: attribute keys %v, want %v", info.Name, k, wantKeys)
			}
		}
	}
	odd := false
	for _, dp := range got[schema.MetricPhaseDuration].Data.(metricdata.Histogram[float64]).DataPoints {
		if v, _ := dp.Attributes.Value(schema.AttrPhase); v.AsString() == schema.Phase(42).String() {
			odd = true
		}
	}
	if !odd {
		t.Error("phase outside the enum was not recorded")
	}
}

func attrKeys(s attribute.Set) []attribute.Key {
	var keys []attribute.Key
	for _, kv := range s.ToSlice() {
		keys = append(keys, kv.Key)
	}
	slices.Sort(keys)
	return keys
}

func TestNilInstrumentsRecordNothing(t *testing.T) {
	var in *Instruments
	recordOneOfEach(context.Background(), in) // must not panic
}

// A cancellation counts under its own result, never as a failure: the
// migrations counter and the cancelled phase's duration sample both say
// cancelled.
func TestCancellationsCountApartFromFailures(t *testing.T) {
	clearOTelEnv(t)
	reader := sdkmetric.NewManualReader()
	tel, err := Setup(context.Background(), Config{MetricReaders: []sdkmetric.Reader{reader}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	in, ctx := tel.Instruments(), context.Background()
	in.MigrationDone(ctx, schema.RoleSource, schema.ResultFailure)
	for range 2 {
		in.MigrationDone(ctx, schema.RoleSource, schema.ResultCancelled)
		in.PhaseCancelled(ctx, schema.RoleSource, schema.PhaseRamPushPrePause, time.Second)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}  // migrations by result
	phases := map[string]uint64{} // phase samples by result
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name != schema.MetricMigrations {
					continue
				}
				for _, dp := range d.DataPoints {
					v, _ := dp.Attributes.Value(schema.AttrResult)
					counts[v.AsString()] += dp.Value
				}
			case metricdata.Histogram[float64]:
				if m.Name != schema.MetricPhaseDuration {
					continue
				}
				for _, dp := range d.DataPoints {
					v, _ := dp.Attributes.Value(schema.AttrResult)
					phases[v.AsString()] += dp.Count
				}
			}
		}
	}
	if counts[schema.ResultCancelled] != 2 || counts[schema.ResultFailure] != 1 {
		t.Errorf("migrations by result %v, want 2 cancelled and 1 failure", counts)
	}
	if phases[schema.ResultCancelled] != 2 || phases[schema.ResultFailure] != 0 {
		t.Errorf("phase samples by result %v, want 2 cancelled and no failure", phases)
	}
}
