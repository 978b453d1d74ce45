// Command peerbench migrates the same guests with QEMU and with migtrace
// on loopback, alternately, and prints one table comparing them with the
// goals of issue 16. `make bench-peer` builds what it needs and runs it.
//
//	peerbench -migtrace bin/migtrace [-runs 5] [-max-bandwidth 1GiB] [-downtime-target 30ms]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/migtrace/migtrace/migrate/peerbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

var caseNames = map[string]peerbench.Case{
	"idle256":  peerbench.CaseIdle256,
	"dirty256": peerbench.CaseDirty256,
	"idle4g":   peerbench.CaseIdle4G,
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("peerbench", flag.ContinueOnError)
	var (
		runs      = fs.Int("runs", 5, "migrations per case and system")
		bandwidth = fs.String("max-bandwidth", "1GiB", "bandwidth cap for both systems, bytes per second with an optional IEC suffix; 0 = none")
		downtime  = fs.Duration("downtime-target", 30*time.Millisecond, "downtime target for both (QMP downtime-limit, migtrace --downtime-target)")
		qemu      = fs.String("qemu", peerbench.DefaultQEMU, "QEMU binary")
		migtrace  = fs.String("migtrace", "bin/migtrace", "migtrace binary (make build)")
		cases     = fs.String("cases", "idle256,dirty256,idle4g", "cases to run: idle256, dirty256, idle4g")
		systems   = fs.String("systems", "qemu,sim,sim-skip-checksum,sim-verify-full,kvm", "systems to run: qemu, sim, sim-skip-checksum, sim-verify-full, kvm")
		warmup    = fs.Duration("warmup", time.Second, "how long each guest runs its workload before it migrates")
		dir       = fs.String("dir", "", "parent of the work directory (default: the system's temporary directory)")
		keep      = fs.Bool("keep", false, "keep the work directory (traces, guest binary)")
	)
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil // the usage was printed, as asked
	} else if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	bw, err := parseIEC(*bandwidth)
	if err != nil {
		return fmt.Errorf("%w: -max-bandwidth: %v", errUsage, err)
	}
	cfg := peerbench.Config{
		Runs: *runs, MaxBandwidth: bw, DowntimeTarget: *downtime,
		QEMU: *qemu, Migtrace: *migtrace, Warmup: *warmup, Log: os.Stderr,
		Command: "peerbench " + strings.Join(args, " "),
	}
	for _, n := range strings.Split(*cases, ",") {
		c, ok := caseNames[strings.TrimSpace(n)]
		if !ok {
			return fmt.Errorf("%w: -cases: unknown case %q", errUsage, n)
		}
		cfg.Cases = append(cfg.Cases, c)
	}
	for _, n := range strings.Split(*systems, ",") {
		s, ok := systemNames()[strings.TrimSpace(n)]
		if !ok {
			return fmt.Errorf("%w: -systems: unknown system %q", errUsage, n)
		}
		cfg.Systems = append(cfg.Systems, s)
	}
	if _, err := os.Stat(*migtrace); err != nil {
		return fmt.Errorf("migtrace binary: %w (run make build)", err)
	}
	work, err := peerbench.WorkDir(*dir)
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "work directory:", work)
	} else {
		defer os.RemoveAll(work)
	}
	cfg.Dir = work
	report, err := peerbench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return peerbench.Render(os.Stdout, report)
}

func systemNames() map[string]peerbench.System {
	m := map[string]peerbench.System{}
	for _, s := range peerbench.DefaultSystems {
		switch {
		case s.QEMU:
			m["qemu"] = s
		case s.SkipMemoryChecksum:
			m[s.Backend+"-skip-checksum"] = s
		case s.VerifyMemory != "":
			m[s.Backend+"-verify-"+s.VerifyMemory] = s
		default:
			m[s.Backend] = s
		}
	}
	return m
}

// parseIEC reads a byte count with an optional IEC suffix (KiB to TiB).
func parseIEC(s string) (uint64, error) {
	units := []struct {
		suffix string
		mult   uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	num, mult := strings.TrimSpace(s), uint64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSuffix(num, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil || v > (1<<64-1)/mult {
		return 0, fmt.Errorf("%q: want a whole number with an optional IEC suffix (KiB, MiB, GiB, TiB)", s)
	}
	return v * mult, nil
}
