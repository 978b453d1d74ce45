package uprobe_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

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
// ns/call in the second round, by the wall clock and by the thread's CPU
// time: the first round warms up what the tracer touches for the first
// time (in this VM, writing fresh ring-buffer pages costs several hundred
// ns per record), since a tracer attached to a server spends its life in
// the steady state. The CPU time counts the probe's trap and program,
// which run on the calling thread, and not the time other processes take
// the CPU, which on a shared machine moves wall-clock figures by ±30 %.
func timeLoop(b *testing.B, bin, fn string, attach func(pid int) (detach func())) (wall, cpu float64) {
	b.Helper()
	p := probetest.Start(b, bin, "loop", "-n", strconv.Itoa(loopCalls), "-fn", fn, "-rounds", "2")
	if attach != nil {
		detach := attach(p.PID)
		defer detach()
	}
	p.Step(b)
	line := p.Go(b)
	if _, err := fmt.Sscanf(line, "ns/call %g cpu-ns/call %g", &wall, &cpu); err != nil {
		b.Fatalf("target said %q: %v", line, err)
	}
	return wall, cpu
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
	sum, cpu := map[string]float64{}, map[string]float64{}
	drops := map[string]float64{}
	add := func(k string, wall, c float64) { sum[k] += wall; cpu[k] += c }
	for i := 0; i < b.N; i++ {
		for _, fn := range []string{"push", "plain"} {
			sym := loopSymbol[fn]
			w, c := timeLoop(b, bin, fn, nil)
			add("none/"+fn, w, c)
			w, c = timeLoop(b, bin, fn, attachTracer(b, sym, 0))
			add("tracer/"+fn, w, c)
			w, c = timeLoop(b, bin, fn, attachBpftrace(b, bin, sym, bpftraceBare, nil))
			add("bpftrace/"+fn, w, c)
			dropped := 0.0
			w, c = timeLoop(b, bin, fn, attachBpftrace(b, bin, sym, bpftraceSameWork, &dropped))
			add("bpftrace-same-work/"+fn, w, c)
			drops[fn] += dropped
		}
	}
	for k, v := range sum {
		b.ReportMetric(v/float64(b.N), k+"-ns/call")
	}
	for _, fn := range []string{"push", "plain"} {
		b.ReportMetric(cpu["tracer/"+fn]/cpu["bpftrace/"+fn], "tracer/bpftrace-cpu-"+fn)
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

// programRuntime returns the kernel's count of runs and ns per run of the
// BPF program whose name starts with prefix and that ran at least min
// times, or 0 runs if there is none.
func programRuntime(prefix string, min uint64) (runs uint64, ns float64) {
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return 0, 0
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, ierr := p.Info()
		st, serr := p.Stats()
		p.Close()
		if ierr == nil && serr == nil && strings.HasPrefix(info.Name, prefix) && st.RunCount >= min {
			return st.RunCount, float64(st.Runtime.Nanoseconds()) / float64(st.RunCount)
		}
	}
}

// BenchmarkProgramRuntime has the kernel count (BPF statistics) how long
// this tracer's program and a bare bpftrace uprobe's take per hit on the
// same PUSHQ-first function: what the tracer adds to a probe hit beyond
// the uprobe trap both pay, without the noise of timing the target on a
// shared machine. It turns the statistics on for the whole system while it
// runs (kernel.bpf_stats_enabled), which adds the cost of two clock reads
// to every BPF program run meanwhile, these two included.
//
//	go test -run '^$' -bench ProgramRuntime -benchtime 3x ./probes/uprobe/
func BenchmarkProgramRuntime(b *testing.B) {
	probetest.Bpftrace(b)
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Skipf("BPF statistics: %v", err)
	}
	defer stats.Close()
	bin := probetest.BuildTarget(b)
	sym := loopSymbol["push"]
	sum := map[string]float64{}
	// Each attachment's detach reads its program's count before it goes.
	measure := func(prefix string, attach func(int) func()) func(int) func() {
		return func(pid int) func() {
			detach := attach(pid)
			return func() {
				runs, ns := programRuntime(prefix, loopCalls)
				if runs == 0 {
					b.Errorf("no %s program ran %d times", prefix, loopCalls)
				}
				sum[prefix] += ns
				detach()
			}
		}
	}
	for i := 0; i < b.N; i++ {
		timeLoop(b, bin, "push", measure("migtrace_uprobe", attachTracer(b, sym, 0)))
		// bpftrace names its program after the probed function.
		timeLoop(b, bin, "push", measure("github_com_migt", attachBpftrace(b, bin, sym, bpftraceBare, nil)))
	}
	tracer, bare := sum["migtrace_uprobe"]/float64(b.N), sum["github_com_migt"]/float64(b.N)
	b.ReportMetric(tracer, "tracer-ns/run")
	b.ReportMetric(bare, "bpftrace-ns/run")
	b.ReportMetric(tracer-bare, "added-ns/hit")
	b.ReportMetric(0, "ns/op")
}
