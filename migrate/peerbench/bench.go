package peerbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/migtrace/migtrace/migrate/peerbench/guest"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Config is one benchmark invocation.
type Config struct {
	// Runs is the number of migrations per case and system.
	Runs    int
	Cases   []Case
	Systems []System
	// MaxBandwidth (bytes/s, 0 = no cap) and DowntimeTarget are given to
	// both systems: QMP max-bandwidth and downtime-limit, migtrace
	// --max-bandwidth and --downtime-target.
	MaxBandwidth   uint64
	DowntimeTarget time.Duration
	// QEMU and Migtrace are the binaries.
	QEMU, Migtrace string
	// Warmup is how long a guest runs its workload before it migrates.
	Warmup time.Duration
	// Dir receives the guest binary, QMP sockets and trace files.
	Dir string
	// Log receives a line per run; nil discards them.
	Log io.Writer
	// Command is recorded in the report.
	Command string
}

// reserveMiB is kept free of the QEMU guest's dirtying below the top of
// its memory, where the firmware keeps its tables.
const reserveMiB = 2

// Run runs every system on every case Runs times, the systems taking
// turns (and each run starting with a different one, so no system always
// follows the same neighbour), and returns the report. A failed run is
// recorded in the report and the benchmark goes on.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if cfg.Runs < 1 {
		return Report{}, fmt.Errorf("runs %d: want at least 1", cfg.Runs)
	}
	if cfg.DowntimeTarget < time.Millisecond || cfg.DowntimeTarget%time.Millisecond != 0 {
		return Report{}, fmt.Errorf("downtime target %v: QEMU takes whole milliseconds", cfg.DowntimeTarget)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	kernel, err := guest.WriteFile(cfg.Dir)
	if err != nil {
		return Report{}, err
	}
	r := Report{Date: time.Now(), Command: cfg.Command, Runs: cfg.Runs, MaxBandwidth: cfg.MaxBandwidth, DowntimeTarget: cfg.DowntimeTarget}
	if r.LoadBefore, err = LoadAverage(); err != nil {
		return r, err
	}
	for _, c := range cfg.Cases {
		cr := CaseResult{Case: c, Systems: make([]SystemResult, len(cfg.Systems))}
		for i, s := range cfg.Systems {
			cr.Systems[i].System = s
		}
		for run := range cfg.Runs {
			for k := range cfg.Systems {
				i := (k + run) % len(cfg.Systems)
				s := cfg.Systems[i]
				smp, err := runOne(ctx, cfg, kernel, c, s, run)
				if ctx.Err() != nil {
					return r, ctx.Err()
				}
				if err != nil {
					cr.Systems[i].Errors = append(cr.Systems[i].Errors, err.Error())
					fmt.Fprintf(cfg.Log, "%s | %s | run %d/%d: failed: %v\n", c.Name, s.Name, run+1, cfg.Runs, err)
					continue
				}
				cr.Systems[i].Samples = append(cr.Systems[i].Samples, smp)
				guestRate := ""
				if smp.GuestDirtyRate > 0 {
					guestRate = fmt.Sprintf(", guest dirtied %s MiB/s across it", fmtNum(smp.GuestDirtyRate/(1<<20)))
				}
				fmt.Fprintf(cfg.Log, "%s | %s | run %d/%d: total %s ms, downtime %s ms, blackout %s ms, %s MiB/s, %d zero pages, %d rounds, load %.2f%s\n",
					c.Name, s.Name, run+1, cfg.Runs, fmtNum(colTotal(smp)), fmtNum(colDowntime(smp)), fmtNum(colBlackout(smp)),
					fmtNum(colMoved(smp)), smp.ZeroPages, smp.Rounds, smp.Load1, guestRate)
			}
		}
		r.Cases = append(r.Cases, cr)
	}
	r.LoadAfter, err = LoadAverage()
	return r, err
}

func runOne(ctx context.Context, cfg Config, kernel string, c Case, s System, run int) (Sample, error) {
	load, err := LoadAverage()
	if err != nil {
		return Sample{}, err
	}
	var smp Sample
	if s.QEMU {
		smp, err = runQEMU(ctx, cfg, kernel, c)
	} else {
		smp, err = runMigtrace(ctx, cfg, c, s, run)
	}
	smp.Load1 = load[0]
	return smp, err
}

func runQEMU(ctx context.Context, cfg Config, kernel string, c Case) (Sample, error) {
	params, err := guest.ForMemory(c.MemoryMiB, c.DirtyMiBps, reserveMiB)
	if err != nil {
		return Sample{}, err
	}
	qc := QEMUConfig{Binary: cfg.QEMU, Kernel: kernel, MemoryMiB: c.MemoryMiB, Params: params, Dir: cfg.Dir}
	srcCfg, dstCfg := qc, qc
	srcCfg.Name, dstCfg.Name, dstCfg.Incoming = "src", "dst", "tcp:127.0.0.1:0"
	src, err := StartQEMU(ctx, srcCfg)
	if err != nil {
		return Sample{}, err
	}
	defer src.Stop(context.WithoutCancel(ctx))
	dst, err := StartQEMU(ctx, dstCfg)
	if err != nil {
		return Sample{}, err
	}
	defer dst.Stop(context.WithoutCancel(ctx))
	// Heartbeats come once a second from the guest's entry to ring 3, so
	// heartbeat n means the workload has run for n seconds; boot time
	// (firmware, emulated here) is not part of the migration.
	warm := max(uint64((cfg.Warmup+time.Second-1)/time.Second), 1)
	bctx, cancel := context.WithTimeout(ctx, 60*time.Second+cfg.Warmup)
	defer cancel()
	if _, err := src.Serial.WaitFor(bctx, func(l guest.Line) bool { return l.Kind == guest.LineHeartbeat && l.Seq >= warm }); err != nil {
		return Sample{}, fmt.Errorf("booting the qemu guest: %w", err)
	}
	res, err := MigrateQEMU(ctx, src, dst, QEMUSettings{MaxBandwidth: cfg.MaxBandwidth, DowntimeLimit: cfg.DowntimeTarget})
	if err != nil {
		return Sample{}, err
	}
	st := res.Stats
	return Sample{
		Total:      time.Duration(st.TotalTime) * time.Millisecond,
		Downtime:   time.Duration(st.Downtime) * time.Millisecond,
		Blackout:   res.Blackout(),
		GuestBytes: (st.RAM.Normal + st.RAM.Duplicate) * st.RAM.PageSize,
		ZeroPages:  st.RAM.Duplicate,
		Rounds:     int(st.RAM.DirtySyncCount),

		GuestDirtyRate: res.GuestDirtyRate(),
	}, nil
}

func runMigtrace(ctx context.Context, cfg Config, c Case, s System, run int) (Sample, error) {
	res, err := RunMigtrace(ctx, MigtraceConfig{
		Binary: cfg.Migtrace, Backend: s.Backend,
		MemoryBytes: uint64(c.MemoryMiB) << 20, DirtyRate: uint64(c.DirtyMiBps) << 20,
		MaxBandwidth: cfg.MaxBandwidth, DowntimeTarget: cfg.DowntimeTarget,
		SkipMemoryChecksum: s.SkipMemoryChecksum, VerifyMemory: s.VerifyMemory, Warmup: cfg.Warmup,
		Dir: cfg.Dir, Name: slug(c.Name) + "_" + slug(s.Name) + "_" + strconv.Itoa(run+1),
	})
	if err != nil {
		return Sample{}, err
	}
	return migtraceSample(res)
}

// migtraceSample takes the figures from both sides' records: times from
// the source, pages and blackout from the destination, which records
// every RAM phase with its zero pages and rounds.
func migtraceSample(res MigtraceResult) (Sample, error) {
	src, dst := res.Source, res.Destination
	if dst.Blackout == nil {
		return Sample{}, errors.New("migtrace's destination recorded no blackout")
	}
	smp := Sample{Total: src.EndTime.Sub(src.StartTime), Downtime: time.Duration(src.DowntimeNs), Blackout: time.Duration(dst.Blackout.Ns)}
	var pages uint64
	for _, p := range dst.Phases {
		switch p.Phase {
		case schema.PhaseRamPushPrePause, schema.PhaseRamPushPostPause, schema.PhaseRamPull:
			pages += uint64(p.Pages)
			smp.ZeroPages += uint64(p.ZeroPages)
			smp.Rounds += int(p.Rounds)
		}
	}
	smp.GuestBytes = pages * vmm.PageSize
	if smp.Total <= 0 || smp.Downtime <= 0 || smp.Blackout <= 0 {
		return smp, errors.New("migtrace's records lack the total time, downtime or blackout")
	}
	return smp, nil
}

func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			if !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	return strings.Trim(b.String(), "-")
}

// LoadAverage reads the 1, 5 and 15-minute load averages (Linux).
func LoadAverage() ([3]float64, error) {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l, fmt.Errorf("reading the load average: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return l, fmt.Errorf("reading the load average: %q", b)
	}
	for i := range l {
		if l[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return l, fmt.Errorf("reading the load average: %w", err)
		}
	}
	return l, nil
}

// WorkDir makes a directory for one benchmark under dir ("" for the
// system's temporary directory).
func WorkDir(dir string) (string, error) {
	d, err := os.MkdirTemp(dir, "peerbench-")
	if err != nil {
		return "", fmt.Errorf("making a work directory: %w", err)
	}
	return filepath.Clean(d), nil
}
