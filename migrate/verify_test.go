package migrate

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/schema"
)

// lateCounter records the late checks a destination counts; everything
// else goes to a nil *tracing.Instruments, which records nothing.
type lateCounter struct {
	*tracing.Instruments
	mu      sync.Mutex
	results []string
}

func (c *lateCounter) MemoryLate(_ context.Context, result string) {
	c.mu.Lock()
	c.results = append(c.results, result)
	c.mu.Unlock()
}

// errorLog keeps the messages logged at error level.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelError }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.msgs = append(l.msgs, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *errorLog) WithGroup(string) slog.Handler      { return l }

func (l *errorLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.msgs, func(m string) bool { return strings.Contains(m, s) })
}

// missed is how many pages the source's guest changes behind its dirty
// log as it pauses.
type missed int

const (
	missNone missed = iota
	missOne         // the last page
	missAll         // every page past the TSC ring
)

// outcome is where a missed write is caught.
type outcome int

const (
	passes    outcome = iota // verified, nothing wrong
	prevented                // before the handoff: the guest runs on at the source
	reported                 // after it: the guest runs on the destination, flagged
	unseen                   // never: what "off" gives up
	either                   // prevented or reported, by whether the sample hit the page
)

// TestVerifyMemory migrates a 16 MiB guest (4096 pages, more than a
// sample) with every verification, clean and with writes its source's
// dirty log missed, and checks where each mode catches them: before the
// handoff (the migration fails, the source keeps the guest), after it (the
// destination's record, metric and error log say so) or not at all.
func TestVerifyMemory(t *testing.T) {
	tests := []struct {
		cfg  Config
		miss missed
		want outcome
	}{
		{Config{VerifyMemory: VerifyFull}, missNone, passes},
		{Config{VerifyMemory: VerifyFull}, missOne, prevented},
		{Config{VerifyMemory: VerifySampled}, missNone, passes},
		{Config{VerifyMemory: VerifySampled}, missOne, either},
		{Config{VerifyMemory: VerifySampled}, missAll, prevented},
		{Config{}, missAll, prevented}, // the default is sampled
		{Config{VerifyMemory: VerifyAfter}, missNone, passes},
		{Config{VerifyMemory: VerifyAfter}, missOne, reported},
		{Config{VerifyMemory: VerifyAfter}, missAll, reported},
		{Config{VerifyMemory: VerifyOff}, missNone, passes},
		{Config{VerifyMemory: VerifyOff}, missOne, unseen},
		{Config{SkipMemoryChecksum: true, VerifyMemory: VerifyFull}, missOne, unseen}, // the alias wins
	}
	for _, tc := range tests {
		mode := tc.cfg.withDefaults().VerifyMemory
		name := string(mode) + "/" + [...]string{"clean", "one page missed", "all pages missed"}[tc.miss]
		switch {
		case tc.cfg.SkipMemoryChecksum:
			name = "skip-memory-checksum/" + name
		case tc.cfg.VerifyMemory == "":
			name = "default/" + name
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testVerifyMemory(t, tc.cfg, mode, tc.miss, tc.want)
		})
	}
}

func testVerifyMemory(t *testing.T, cfg Config, mode VerifyMemory, miss missed, want outcome) {
	p := newPair(t, cfg, sim.WithMemory(16<<20), sim.WithDirtyRate(0))
	pages := p.srcVM.Spec().Pages()
	srcCfg, dstCfg := cfg, Config{IOTimeout: 10 * time.Second}
	srcCfg.IOTimeout = 10 * time.Second
	linkHandoffs(&srcCfg, &dstCfg)
	counter, log := &lateCounter{}, &errorLog{}
	dstCfg.Metrics, dstCfg.Logger = counter, slog.New(log)
	rec := tracetest.NewSpanRecorder()
	dstCfg.Tracer = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer(schema.ScopeName)
	srcCfg.Progress = func(pr Progress) {
		if pr.Phase != schema.PhasePause || miss == missNone {
			return
		}
		// The guest is about to pause: change pages behind the dirty log
		// (WritePages marks nothing), after pre-copy sent them.
		first := pages - 1
		if miss == missAll {
			first = sim.RingPages
		}
		junk := make([]byte, (pages-first)*vmm.PageSize)
		for i := range junk {
			junk[i] = byte(i%251 + 1)
		}
		if err := p.srcVM.WritePages(first, junk); err != nil {
			t.Error(err)
		}
	}
	ctx := context.Background()
	id := NewID()
	p.serve(ctx, id, srcCfg, nil)
	vm, dres, dstErr := RunDestination(ctx, p.dialer(), p.backend, id, dstCfg)
	out := <-p.srcRes
	if vm != nil {
		defer vm.Destroy()
	}

	got := passes
	switch {
	case dstErr != nil:
		if !errors.Is(dstErr, ErrVerification) || out.err == nil || p.srcVM.State() != vmm.StateRunning || vm != nil {
			t.Fatalf("failed other than by verification before the handoff: destination %v, source %v, source VM %v", dstErr, out.err, p.srcVM.State())
		}
		got = prevented
	case out.err != nil:
		t.Fatalf("source failed, destination did not: %v", out.err)
	case dres.MemoryLate != nil && dres.MemoryLate.Result == schema.MemoryLateMismatch:
		got = reported
	case miss != missNone:
		got = unseen
	}
	if got != want && !(want == either && (got == prevented || got == reported)) {
		t.Fatalf("outcome %d, want %d (destination err %v, late %+v)", got, want, dstErr, dres.MemoryLate)
	}
	if got == prevented {
		return
	}

	// The guest runs on the destination: the record says how memory was
	// verified and what was found.
	if p.srcVM.State() != vmm.StateDestroyed || vm.State() != vmm.StateRunning {
		t.Errorf("after the handoff: source %v, destination %v", p.srcVM.State(), vm.State())
	}
	c := dres.Continuity
	wantChecked := mode == VerifyFull || mode == VerifySampled
	if c.MemoryVerify != string(mode) || c.MemoryUnchecked == wantChecked || (wantChecked && !c.MemoryChecksumOK) {
		t.Errorf("continuity: verify %q unchecked %v ok %v, want %q checked %v", c.MemoryVerify, c.MemoryUnchecked, c.MemoryChecksumOK, mode, wantChecked)
	}
	if wantSample := int64(0); mode == VerifySampled {
		wantSample = SamplePages
		if c.MemorySamplePages != wantSample {
			t.Errorf("sample of %d pages, want %d", c.MemorySamplePages, wantSample)
		}
	}
	var wantLate []string
	if mode.late() {
		wantLate = []string{schema.MemoryLateMatch}
		if got == reported {
			wantLate = []string{schema.MemoryLateMismatch}
		}
		if dres.MemoryLate == nil || dres.MemoryLate.Result != wantLate[0] || dres.MemoryLate.DurationNs <= 0 {
			t.Fatalf("late check %+v, want %s", dres.MemoryLate, wantLate[0])
		}
	} else if dres.MemoryLate != nil {
		t.Errorf("late check %+v with verification %s", dres.MemoryLate, mode)
	}
	if !slices.Equal(counter.results, wantLate) {
		t.Errorf("late checks counted %v, want %v", counter.results, wantLate)
	}
	if dres.Verified() != (got != reported) {
		t.Errorf("Verified() = %v with outcome %d", dres.Verified(), got)
	}
	if got == reported && !log.has("GUEST MEMORY DIFFERS") {
		t.Errorf("no error-level log of the mismatch; errors logged: %q", log.msgs)
	}
	// The verdict is on the destination's migration span.
	var late string
	for _, s := range rec.Ended() {
		if s.Name() == schema.SpanMigration {
			for _, kv := range s.Attributes() {
				if string(kv.Key) == schema.AttrMemoryLateResult {
					late = kv.Value.AsString()
				}
			}
		}
	}
	if want := strings.Join(wantLate, ""); late != want {
		t.Errorf("migration span %s = %q, want %q", schema.AttrMemoryLateResult, late, want)
	}
}

func TestSourceVerify(t *testing.T) {
	tests := []struct {
		configured VerifyMemory
		version    int64
		pages      uint64
		want       VerifyMemory
	}{
		{VerifySampled, 2, 65536, VerifySampled},
		{VerifySampled, 2, SamplePages, VerifyFull}, // the sample would be all of it
		{VerifySampled, 1, 65536, VerifyFull},       // version 1 has no check after the handoff
		{VerifyAfter, 2, 65536, VerifyAfter},
		{VerifyAfter, 2, 16, VerifyAfter},
		{VerifyAfter, 1, 65536, VerifyFull},
		{VerifyFull, 1, 65536, VerifyFull},
		{VerifyOff, 1, 65536, VerifyOff},
		{VerifyOff, 2, 65536, VerifyOff},
	}
	for _, tc := range tests {
		if got := sourceVerify(tc.configured, tc.version, tc.pages); got != tc.want {
			t.Errorf("sourceVerify(%s, v%d, %d pages) = %s, want %s", tc.configured, tc.version, tc.pages, got, tc.want)
		}
	}
}

func TestSamplePages(t *testing.T) {
	for _, tc := range []struct {
		pages uint64
		n     int
	}{{65536, SamplePages}, {1025, SamplePages}, {1 << 20, SamplePages}, {10, 10}} {
		s := samplePages(tc.pages, tc.n)
		distinct := len(slices.Compact(slices.Clone(s)))
		if len(s) != tc.n || !slices.IsSorted(s) || distinct != tc.n || s[len(s)-1] >= tc.pages {
			t.Errorf("samplePages(%d, %d): %d pages, %d distinct, sorted %v, last %d", tc.pages, tc.n, len(s), distinct, slices.IsSorted(s), s[len(s)-1])
		}
	}
	// Two draws differ: the pages cannot be known before the pause.
	if a, b := samplePages(1<<20, SamplePages), samplePages(1<<20, SamplePages); slices.Equal(a, b) {
		t.Error("two samples of a 4 GiB guest drew the same pages")
	}
}

func TestParseVerifyMemory(t *testing.T) {
	for _, s := range []string{"full", "sampled", "after", "off"} {
		if v, err := ParseVerifyMemory(s); err != nil || string(v) != s {
			t.Errorf("ParseVerifyMemory(%q) = %q, %v", s, v, err)
		}
	}
	for _, s := range []string{"", "Full", "none", "sample"} {
		if _, err := ParseVerifyMemory(s); err == nil {
			t.Errorf("ParseVerifyMemory(%q) accepted", s)
		}
	}
}

// BenchmarkSamplePages draws the sample of a 4 GiB guest, which sampled
// verification does once per migration after the pause.
func BenchmarkSamplePages(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		_ = samplePages(1<<20, SamplePages)
	}
}
