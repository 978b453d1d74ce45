package migrate

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
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

// BenchmarkTelemetryCPU measures what full telemetry costs a whole
// migration in CPU time, with a confidence interval: a guest whose pages
// all hold data migrates back and forth, each of b.N pairs once with
// telemetry (as BenchmarkTracingOverhead sets it up) and once without, in
// alternating order, and each migration's process CPU time (user and
// system, every thread) is taken. It reports the mean overhead, traced
// minus untraced over untraced, and the half-width of its 95 % confidence
// interval from the pairs' differences (normal approximation, so run at
// least 100 pairs: -benchtime 400x). Telemetry costs about the same
// whatever the guest's size, so it is a larger share of a smaller guest's
// migration: 64 MiB, and 256 MiB as in the peer benchmark.
//
//	go test -run '^$' -bench TelemetryCPU -benchtime 400x ./migrate/
func BenchmarkTelemetryCPU(b *testing.B) {
	for _, mib := range []uint64{64, 256} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) { benchTelemetryCPU(b, mib<<20) })
	}
}

func benchTelemetryCPU(b *testing.B, memBytes uint64) {
	tel, err := tracing.Setup(context.Background(), tracing.Config{ServiceName: "bench", Prometheus: true, TraceFile: os.DevNull})
	if err != nil {
		b.Fatal(err)
	}
	defer tel.Shutdown(context.Background())
	traced := Config{Tracer: tel.Tracer(), Metrics: tel.Instruments()}
	m := newMigrator(b, memBytes)
	defer m.close()
	// The collector runs where each migration ends, inside its window, not
	// wherever the heap happened to fill: each migration pays for
	// collecting its own garbage, telemetry's included, and no other's.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	flush := func() {
		if err := tel.ForceFlush(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	var diffs, base []float64
	for i := 0; i < b.N; i++ {
		var t, u float64
		if i%2 == 0 {
			t, u = m.cpu(b, traced, flush), m.cpu(b, Config{}, nil)
		} else {
			u, t = m.cpu(b, Config{}, nil), m.cpu(b, traced, flush)
		}
		diffs, base = append(diffs, t-u), append(base, u)
	}
	mean, half := meanCI(diffs)
	u, _ := meanCI(base)
	b.ReportMetric(100*mean/u, "overhead-%")
	b.ReportMetric(100*half/u, "ci95-±%")
	b.ReportMetric(u/1e6, "untraced-cpu-ms")
	b.ReportMetric(0, "ns/op")
}

// meanCI is the mean of v and the half-width of its 95 % confidence
// interval (1.96 standard errors).
func meanCI(v []float64) (mean, half float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, math.Inf(1)
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, 1.96 * math.Sqrt(ss/float64(len(v)-1)/float64(len(v)))
}

// migrator migrates one sim guest back and forth over loopback.
type migrator struct {
	backend *sim.Backend
	vm      vmm.VM
}

// newMigrator boots a guest of memBytes whose pages past the TSC ring all
// hold data (the same each time), as a guest that has run a while.
func newMigrator(b *testing.B, memBytes uint64) *migrator {
	backend, err := sim.New(sim.WithMemory(memBytes), sim.WithDirtyRate(0))
	if err != nil {
		b.Fatal(err)
	}
	vm, err := backend.NewVM(backend.DefaultSpec())
	if err != nil {
		b.Fatal(err)
	}
	if err := vm.Boot(context.Background()); err != nil {
		b.Fatal(err)
	}
	content := make([]byte, memBytes-sim.RingPages*vmm.PageSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(content); i += 8 {
		binary.LittleEndian.PutUint64(content[i:], rng.Uint64())
	}
	if err := vm.WritePages(sim.RingPages, content); err != nil {
		b.Fatal(err)
	}
	return &migrator{backend: backend, vm: vm}
}

// cpu migrates the guest once with cfg on both sides and returns the
// process CPU time it took, in ns, with flush (the exporter's work for
// this migration's spans, which its batch processor would otherwise do
// later, maybe in another migration's window) and a collection.
func (m *migrator) cpu(b *testing.B, cfg Config, flush func()) float64 {
	sc, dc := tcpPair(b)
	id := NewID()
	srcErr := make(chan error, 1)
	start := processCPU()
	go func() {
		_, err := RunSource(context.Background(), sc, m.vm, id, cfg)
		srcErr <- err
	}()
	next, _, err := RunDestination(context.Background(), func(context.Context) (net.Conn, error) { return dc, nil }, m.backend, id, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := <-srcErr; err != nil {
		b.Fatal(err)
	}
	if flush != nil {
		flush()
	}
	runtime.GC()
	d := processCPU() - start
	m.vm = next
	return float64(d.Nanoseconds())
}

func (m *migrator) close() { _ = m.vm.Destroy() }
