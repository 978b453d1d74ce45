package otlpread_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/report/reporttest"
)

// benchSpans is the size of the benchmark's trace file.
const benchSpans = 100_000

var bench struct {
	once  sync.Once
	dir   string
	path  string
	size  int64
	spans int
	err   error
}

// benchFile writes, once per process, an OTLP JSON Lines file of about
// 100k spans in batches of ~500 spans a line, as a batch span processor
// feeding a file exporter would.
func benchFile(b *testing.B) (string, int64) {
	b.Helper()
	bench.once.Do(func() {
		bench.dir, bench.err = os.MkdirTemp("", "migtrace-bench-")
		if bench.err != nil {
			return
		}
		bench.path = filepath.Join(bench.dir, "100k-spans.jsonl")
		f, err := os.Create(bench.path)
		if err != nil {
			bench.err = err
			return
		}
		defer f.Close()
		const migrationsPerLine = 26 // 26 × (10 + 9) = 494 spans
		for i := 0; bench.spans < benchSpans; i++ {
			ms := reporttest.Fleet(migrationsPerLine, uint64(i))
			for _, m := range ms {
				bench.spans += len(m.Phases) + 1
			}
			if err := reporttest.WriteJSONL(f, reporttest.Traces(ms...)); err != nil {
				bench.err = err
				return
			}
		}
		st, err := f.Stat()
		if err == nil {
			bench.size = st.Size()
		}
		bench.err = err
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.path, bench.size
}

// TestMain fails the run if a goroutine a test started outlives the tests,
// then deletes the benchmark's trace file.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		if bench.dir != "" {
			os.RemoveAll(bench.dir)
		}
		os.Exit(code)
	}))
}

// reportPhases is `migtrace report phases FILE` minus the CLI: read,
// select every side, render the D-script tables.
func reportPhases(path string, w io.Writer, opts ...otlpread.Option) error {
	r := otlpread.New(opts...)
	if err := r.ReadFile(context.Background(), path); err != nil {
		return err
	}
	all, err := r.Migrations()
	if err != nil {
		return err
	}
	ms, err := report.Select(all, report.Selection{})
	if err != nil {
		return err
	}
	if err := report.RequirePhases(ms); err != nil {
		return err
	}
	return render.Phases(w, ms, render.FormatDTrace)
}

// BenchmarkReportPhasesVsJQ runs `report phases` over a 100k-span file and
// jq making one pass over the same file, in the same run, and logs the
// throughput of each and their ratio (goal: faster than jq).
func BenchmarkReportPhasesVsJQ(b *testing.B) {
	path, size := benchFile(b)
	var oursNs, jqNs float64
	b.Run("report-phases", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if err := reportPhases(path, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(bench.spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
		oursNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("report-phases-2-decoders", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			if err := reportPhases(path, io.Discard, otlpread.WithDecoders(2)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jq", func(b *testing.B) {
		jq, err := exec.LookPath("jq")
		if err != nil {
			b.Skip("jq not installed (apt-get install -y jq); no baseline")
		}
		b.SetBytes(size)
		for b.Loop() {
			cmd := exec.Command(jq, "-c", ".resourceSpans|length", path)
			cmd.Stdout = io.Discard
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
		jqNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		if oursNs > 0 {
			// The ratio, measured in this run: > 1 means report phases
			// is faster than jq's single pass.
			b.ReportMetric(jqNs/oursNs, "report-phases-speedup")
		}
	})
	if oursNs > 0 && jqNs > 0 {
		mb := float64(size) / 1e6
		b.Logf("%d spans, %.1f MB: report phases %.1f MB/s, jq %.1f MB/s; report phases is %.2fx jq's speed",
			bench.spans, mb, mb/(oursNs/1e9), mb/(jqNs/1e9), jqNs/oursNs)
	}
}
