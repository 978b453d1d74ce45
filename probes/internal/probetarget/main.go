// Command probetarget calls migtrace's probes with known arguments so tests
// and benchmarks can attach tracers to a real process. It prints "ready",
// waits for one line on stdin (the tracer is attached by then), runs the
// chosen workload, prints its result line and exits.
//
//	probetarget bulk -n 1000 -threads 4   every probe n times, distinct args, locked OS threads
//	probetarget seed -side both           the synthetic seed migration (source, then destination)
//	probetarget loop -n 1000000 -fn push  a hot loop on one probe; prints "ns/call X cpu-ns/call Y"
//
// loop -rounds R runs R loops, each after its own go-ahead line, so a
// benchmark can discard a warm-up round.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/probes/probetest"
	"github.com/migtrace/migtrace/tracing/schema"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probetarget bulk|seed|loop [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	n := fs.Int("n", 1000, "calls per probe (bulk) or loop iterations (loop)")
	threads := fs.Int("threads", 4, "goroutines, each locked to its own OS thread (bulk)")
	side := fs.String("side", "both", "source, destination or both (seed)")
	fn := fs.String("fn", "push", "push (the PUSHQ-first probe) or plain (an empty function) (loop)")
	rounds := fs.Int("rounds", 1, "loops to run, each after a go-ahead line (loop)")
	if err := fs.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}

	fmt.Println("ready")
	stdin := bufio.NewReader(os.Stdin)
	waitGo := func() {
		if _, err := stdin.ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "probetarget: waiting for the go-ahead:", err)
			os.Exit(1)
		}
	}
	waitGo()
	switch os.Args[1] {
	case "bulk":
		bulk(*n, *threads)
		fmt.Println("done")
	case "seed":
		if *side == "source" || *side == "both" {
			invoke(probetest.SeedSource())
		}
		if *side == "destination" || *side == "both" {
			invoke(probetest.SeedDestination())
		}
		fmt.Println("done")
	case "loop":
		f := probes.PhaseBegin
		if *fn == "plain" {
			f = plainPhaseBegin
		}
		for r := 0; r < *rounds; r++ {
			if r > 0 {
				waitGo()
			}
			// The thread's CPU time too: it counts the probe's trap and
			// BPF program, which run on this thread, and not the time other
			// processes on a shared machine take it off the CPU.
			runtime.LockOSThread()
			start, cpuStart := time.Now(), threadCPU()
			for i := 0; i < *n; i++ {
				f(schema.RoleSource, schema.PhaseSync, int64(i))
			}
			cpu := threadCPU() - cpuStart
			fmt.Printf("ns/call %.1f cpu-ns/call %.1f\n", float64(time.Since(start).Nanoseconds())/float64(*n), float64(cpu)/float64(*n))
			runtime.UnlockOSThread()
		}
	default:
		fmt.Fprintf(os.Stderr, "probetarget: unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}

// plainPhaseBegin is PhaseBegin as a naive probe would be written: an empty
// noinline function, whose first instruction is RET, which x86 uprobes
// single-step out of line instead of emulating.
//
//go:noinline
func plainPhaseBegin(role schema.Role, phase schema.Phase, hrtime int64) {}

func invoke(calls []probetest.Call) {
	for _, c := range calls {
		c.Invoke()
	}
}

// bulk makes call i of every probe on goroutine i%threads. Each goroutine
// locks itself to an OS thread and all of them hold their lock before any
// starts calling, so the calls come from threads distinct goroutines own.
func bulk(n, threads int) {
	var locked, done sync.WaitGroup
	start := make(chan struct{})
	for g := 0; g < threads; g++ {
		locked.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
			locked.Done()
			<-start
			for i := g; i < n; i += threads {
				for _, id := range probes.IDs {
					probetest.BulkCall(id, i).Invoke()
				}
			}
		}()
	}
	locked.Wait()
	close(start)
	done.Wait()
}
