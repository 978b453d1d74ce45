package uprobe_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/probes/probetest"
	"github.com/migtrace/migtrace/probes/uprobe"
)

// loopCalls is how many probe calls one measurement times.
const loopCalls = 200_000

// loopSymbol names the function the target's loop calls for each -fn.
var loopSymbol = map[string]string{
	"push":  probes.IDPhaseBegin.Symbol(), // PUSHQ BP first: emulated, one trap
	"plain": "main.plainPhaseBegin",       // RET first: single-stepped, two traps
}

// timeLoop runs the target's hot loop on fn twice with attach (if not nil)
// attaching something to the target first, and returns the target's
// ns/call in the second round: the first warms up what the tracer touches
// for the first time (in this VM, writing fresh ring-buffer pages costs
// several hundred ns per record), since a tracer attached to a server
// spends its life in the steady state.
func timeLoop(b *testing.B, bin, fn string, attach func(pid int) (detach func())) float64 {
	b.Helper()
	p := probetest.Start(b, bin, "loop", "-n", strconv.Itoa(loopCalls), "-fn", fn, "-rounds", "2")
	if attach != nil {
		detach := attach(p.PID)
		defer detach()
	}
	p.Step(b)
	line := p.Go(b)
	v, err := strconv.ParseFloat(strings.TrimPrefix(line, "ns/call "), 64)
	if err != nil {
		b.Fatalf("target said %q", line)
	}
	return v
}

// attachTracer attaches this package's tracer with a ring of ringBytes
// (0: the default) and a reader draining it concurrently, as `migtrace
// trace` runs.
func attachTracer(b *testing.B, symbol string, ringBytes int) func(pid int) func() {
	return func(pid int) func() {
		opts := &uprobe.Options{PID: pid, RingBytes: ringBytes}
		tr, err := uprobe.Attach([]uprobe.Target{{Symbol: symbol, Cookie: uint64(probes.IDPhaseBegin)}}, opts)
		probetest.SkipIfNotSupported(b, err)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		n := 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				recs, err := tr.Read(ctx)
				n += len(recs)
				if err != nil {
					return
				}
			}
		}()
		return func() {
			wg.Wait() // Read returns ErrProcessExited once the loop's process is gone
			cancel()
			if lost, _ := tr.Lost(); lost != 0 || n != 2*loopCalls {
				b.Errorf("tracer saw %d of %d calls, lost %d", n, 2*loopCalls, lost)
			}
			tr.Close()
		}
	}
}

// bpftraceBare is a bare bpftrace uprobe, an empty action: the cost of the
// uprobe trap plus bpftrace's minimal program.
const bpftraceBare = `{ }`

// bpftraceSameWork is a bpftrace uprobe doing this tracer's job: the time,
// the thread and the nine argument registers of every call, to user space.
const bpftraceSameWork = `{ printf("%lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu\n", nsecs, tid,
	reg("ax"), reg("bx"), reg("cx"), reg("di"), reg("si"), reg("r8"), reg("r9"), reg("r10"), reg("r11")); }`

// attachBpftrace attaches a bpftrace uprobe with the given action to the
// same function. For the same-work action it adds to *dropped the fraction
// of calls bpftrace did not print (its perf buffers overflow at these
// rates, and a dropped event is cheaper than a delivered one).
func attachBpftrace(b *testing.B, bin, symbol, action string, dropped *float64) func(pid int) func() {
	return func(pid int) func() {
		script := `uprobe:` + bin + `:"` + symbol + `" ` + action + ` BEGIN { printf("tracing\n\n"); }`
		run := probetest.StartBpftraceProgram(b, script, pid)
		return func() {
			out := run.Wait(b)
			if dropped != nil {
				*dropped += 1 - float64(strings.Count(out, "\n"))/float64(2*loopCalls)
			}
		}
	}
}

// BenchmarkAttachedCost measures, in the same run, the per-call cost of a
// probe with nothing attached, with this package's tracer, with a bare
// bpftrace uprobe and with a bpftrace uprobe that ships the same data, on
// a PUSHQ-first probe (probes.PhaseBegin) and on a plain empty function.
// It reports ns/call for each and the ratios: tracer/bpftrace (goal ≤ 1.2
// against the bare uprobe), tracer/bpftrace-same-work, and plain/push.
//
//	go test -run '^$' -bench AttachedCost -benchtime 3x ./probes/uprobe/
func BenchmarkAttachedCost(b *testing.B) {
	probetest.Bpftrace(b)
	bin := probetest.BuildTarget(b)
	sum := map[string]float64{}
	drops := map[string]float64{}
	for i := 0; i < b.N; i++ {
		for _, fn := range []string{"push", "plain"} {
			sym := loopSymbol[fn]
			sum["none/"+fn] += timeLoop(b, bin, fn, nil)
			sum["tracer/"+fn] += timeLoop(b, bin, fn, attachTracer(b, sym, 0))
			sum["bpftrace/"+fn] += timeLoop(b, bin, fn, attachBpftrace(b, bin, sym, bpftraceBare, nil))
			dropped := 0.0
			sum["bpftrace-same-work/"+fn] += timeLoop(b, bin, fn, attachBpftrace(b, bin, sym, bpftraceSameWork, &dropped))
			drops[fn] += dropped
		}
	}
	for k, v := range sum {
		b.ReportMetric(v/float64(b.N), k+"-ns/call")
	}
	for fn, v := range drops {
		b.ReportMetric(v/float64(b.N), "bpftrace-same-work-dropped-fraction/"+fn)
	}
	for _, fn := range []string{"push", "plain"} {
		b.ReportMetric(sum["tracer/"+fn]/sum["bpftrace/"+fn], "tracer/bpftrace-"+fn)
		b.ReportMetric(sum["tracer/"+fn]/sum["bpftrace-same-work/"+fn], "tracer/bpftrace-same-work-"+fn)
	}
	b.ReportMetric(sum["tracer/plain"]/sum["tracer/push"], "plain/push-tracer")
	b.ReportMetric(sum["bpftrace/plain"]/sum["bpftrace/push"], "plain/push-bpftrace")
	b.ReportMetric(0, "ns/op") // the per-call figures above are the result
}
