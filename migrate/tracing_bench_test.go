package migrate

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/migtrace/migtrace/tracing"
)

// BenchmarkTracingOverhead migrates a 64 MiB guest (16 MiB/s dirty rate)
// with full telemetry — an SDK tracer writing OTLP JSON Lines (to
// /dev/null) as `--trace-file` does, and the metric instruments with a
// Prometheus exporter — and without any, alternating the two (and their
// order) in one run. It reports the median wall time of each and their
// ratio.
func BenchmarkTracingOverhead(b *testing.B) {
	tel, err := tracing.Setup(context.Background(), tracing.Config{ServiceName: "bench", Prometheus: true, TraceFile: os.DevNull})
	if err != nil {
		b.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	traced := Config{Tracer: tel.Tracer(), Metrics: tel.Instruments()}
	var with, without, withCPU, withoutCPU []float64
	for i := 0; i < b.N; i++ {
		runs := []struct {
			cfg      Config
			out, cpu *[]float64
		}{{traced, &with, &withCPU}, {Config{}, &without, &withoutCPU}}
		if i%2 == 1 { // the second of a pair runs slower: alternate the order
			runs[0], runs[1] = runs[1], runs[0]
		}
		for _, tc := range runs {
			cpu0 := processCPU()
			_, _, d := migrateOnce(b, 64<<20, 16<<20, 50*time.Millisecond, tc.cfg)
			*tc.cpu = append(*tc.cpu, float64((processCPU() - cpu0).Microseconds()))
			*tc.out = append(*tc.out, float64(d.Microseconds()))
		}
	}
	b.ReportMetric(median(with)/1e3, "traced-ms")
	b.ReportMetric(median(without)/1e3, "untraced-ms")
	b.ReportMetric(median(with)/median(without), "traced/untraced")
	// CPU time is less at the mercy of other load than wall time.
	b.ReportMetric(median(withCPU)/1e3, "traced-cpu-ms")
	b.ReportMetric(median(withoutCPU)/1e3, "untraced-cpu-ms")
	b.ReportMetric(median(withCPU)/median(withoutCPU), "cpu-traced/untraced")
}

// processCPU is the user plus system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
