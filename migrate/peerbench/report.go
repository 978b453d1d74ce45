package peerbench

import (
	"fmt"
	"slices"
	"time"
)

// Case is one benchmark case: a guest size and what the guest does.
type Case struct {
	Name      string
	MemoryMiB uint32
	// DirtyMiBps is the guest's dirtying rate in MiB/s; 0 is idle.
	DirtyMiBps uint32
}

// The three cases of issue 16, in the order the goals refer to them.
var (
	CaseIdle256   = Case{Name: "idle 256 MiB", MemoryMiB: 256}
	CaseDirty256  = Case{Name: "256 MiB dirtying 256 MiB/s", MemoryMiB: 256, DirtyMiBps: 256}
	CaseIdle4G    = Case{Name: "idle 4 GiB", MemoryMiB: 4096}
	DefaultCases  = []Case{CaseIdle256, CaseDirty256, CaseIdle4G}
	systemQEMU    = System{Name: "QEMU kvm", QEMU: true}
	systemSim     = System{Name: "migtrace sim", Backend: "sim"}
	systemSimSkip = System{Name: "migtrace sim --skip-memory-checksum", Backend: "sim", SkipMemoryChecksum: true}
	systemSimFull = System{Name: "migtrace sim --verify-memory full", Backend: "sim", VerifyMemory: "full"}
	systemKVM     = System{Name: "migtrace kvm", Backend: "kvm"}
	// DefaultSystems are QEMU and every migtrace configuration compared:
	// migtrace with its default memory verification, without any, and
	// with all of memory checked inside the blackout.
	DefaultSystems = []System{systemQEMU, systemSim, systemSimSkip, systemSimFull, systemKVM}
)

// System is one migrating system: QEMU, or migtrace with a backend.
type System struct {
	Name               string
	QEMU               bool
	Backend            string
	SkipMemoryChecksum bool
	// VerifyMemory is migtrace's --verify-memory; "" leaves its default.
	VerifyMemory string
}

// Sample is one migration's figures, the same for every system.
type Sample struct {
	// Total is the source's own measure of the migration: QEMU's
	// total-time, migtrace's source record from start to end.
	Total time.Duration
	// Downtime is the source's: QEMU's query-migrate downtime (whole
	// ms), migtrace's pause to handoff.
	Downtime time.Duration
	// Blackout is guest pause on the source to resume on the destination:
	// QEMU's STOP to RESUME event timestamps, migtrace's destination
	// figure.
	Blackout time.Duration
	// GuestBytes is guest memory moved, zero pages included: pages sent,
	// resent pages counted each time, times the page size.
	GuestBytes uint64
	// ZeroPages is how many of those pages travelled as zero markers.
	ZeroPages uint64
	// Rounds counts passes over guest memory, the paused one included:
	// QEMU's dirty-sync-count, migtrace's rounds of its RAM phases.
	Rounds int
	// Load1 is the 1-minute load average when the run started.
	Load1 float64
	// GuestDirtyRate is the rate, bytes/s, the QEMU guest kept up while
	// it migrated (its heartbeats' counts); 0 for migtrace.
	GuestDirtyRate float64
}

// MovedPerSecond is GuestBytes over Total, bytes per second.
func (s Sample) MovedPerSecond() float64 {
	if s.Total <= 0 {
		return 0
	}
	return float64(s.GuestBytes) / s.Total.Seconds()
}

// SystemResult is every run of one system in one case.
type SystemResult struct {
	System  System
	Samples []Sample
	// Errors are the runs that failed, one message each.
	Errors []string
}

// CaseResult is one case's results, per system.
type CaseResult struct {
	Case    Case
	Systems []SystemResult
}

// Report is one benchmark invocation.
type Report struct {
	Date    time.Time
	Command string
	// Runs is the number of runs asked for per case and system.
	Runs           int
	MaxBandwidth   uint64
	DowntimeTarget time.Duration
	// LoadBefore and LoadAfter are /proc/loadavg's 1, 5, 15-minute
	// averages around the whole benchmark.
	LoadBefore, LoadAfter [3]float64
	Cases                 []CaseResult
}

// Stat is a median and the range around it.
type Stat struct {
	Median, Min, Max float64
	N                int
}

// Summarize returns the median, minimum and maximum of vs; the median of
// an even count is the mean of the middle two.
func Summarize(vs []float64) Stat {
	if len(vs) == 0 {
		return Stat{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Stat{Median: med, Min: s[0], Max: s[n-1], N: n}
}

func (r SystemResult) stat(f func(Sample) float64) Stat {
	vs := make([]float64, len(r.Samples))
	for i, s := range r.Samples {
		vs[i] = f(s)
	}
	return Summarize(vs)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// The columns' values.
var (
	colTotal    = func(s Sample) float64 { return ms(s.Total) }
	colDowntime = func(s Sample) float64 { return ms(s.Downtime) }
	colBlackout = func(s Sample) float64 { return ms(s.Blackout) }
	colMoved    = func(s Sample) float64 { return s.MovedPerSecond() / (1 << 20) }
	colZero     = func(s Sample) float64 { return float64(s.ZeroPages) }
	colRounds   = func(s Sample) float64 { return float64(s.Rounds) }
	colLoad     = func(s Sample) float64 { return s.Load1 }
)

// Goal is one of issue 16's goals, evaluated on one report.
type Goal struct {
	// Text states the goal, its bound included.
	Text string
	// Ratio is the measured ratio the goal bounds; Limit its bound.
	Ratio, Limit float64
	// Met needs the ratio within its limit and Extra, if any, to hold.
	Met bool
	// Extra says what else was checked, e.g. every run within the target.
	Extra string
	// Missing says why the goal could not be evaluated.
	Missing string
}

func (r Report) find(c Case, s System) (SystemResult, bool) {
	for _, cr := range r.Cases {
		if cr.Case != c {
			continue
		}
		for _, sr := range cr.Systems {
			if sr.System == s && len(sr.Samples) > 0 {
				return sr, true
			}
		}
	}
	return SystemResult{}, false
}

// Goals evaluates issue 16's goals, for each migtrace system the report
// holds, from the medians of this one report:
//
//  1. idle 256 MiB: total time migtrace / QEMU ≤ 1;
//  2. 256 MiB dirtying: blackout migtrace / QEMU ≤ 1, and migtrace's
//     blackout within the downtime target in every run;
//  3. idle 4 GiB downtime ≤ 1.3 × idle 256 MiB downtime.
func (r Report) Goals() []Goal {
	var systems []System
	seen := map[System]bool{}
	for _, cr := range r.Cases {
		for _, sr := range cr.Systems {
			if !sr.System.QEMU && !seen[sr.System] {
				seen[sr.System] = true
				systems = append(systems, sr.System)
			}
		}
	}
	var goals []Goal
	for _, s := range systems {
		goals = append(goals, r.ratioGoal(
			fmt.Sprintf("%s: total time %s / %s ≤ 1", CaseIdle256.Name, s.Name, systemQEMU.Name), 1,
			CaseIdle256, s, CaseIdle256, systemQEMU, colTotal))
	}
	for _, s := range systems {
		g := r.ratioGoal(
			fmt.Sprintf("%s: blackout %s / %s ≤ 1, and every run within the %v target", CaseDirty256.Name, s.Name, systemQEMU.Name, r.DowntimeTarget), 1,
			CaseDirty256, s, CaseDirty256, systemQEMU, colBlackout)
		if g.Missing == "" {
			sr, _ := r.find(CaseDirty256, s)
			over := 0
			for _, smp := range sr.Samples {
				if smp.Blackout > r.DowntimeTarget {
					over++
				}
			}
			worst := sr.stat(colBlackout).Max
			g.Extra = fmt.Sprintf("%d of %d runs within %v, max %s ms", len(sr.Samples)-over, len(sr.Samples), r.DowntimeTarget, fmtNum(worst))
			if len(sr.Errors) > 0 {
				over += len(sr.Errors)
				g.Extra += fmt.Sprintf(", %d failed", len(sr.Errors))
			}
			g.Met = g.Met && over == 0
		}
		goals = append(goals, g)
	}
	for _, s := range systems {
		goals = append(goals, r.ratioGoal(
			fmt.Sprintf("%s: downtime %s / %s ≤ 1.3", s.Name, CaseIdle4G.Name, CaseIdle256.Name), 1.3,
			CaseIdle4G, s, CaseIdle256, s, colDowntime))
	}
	return goals
}

func (r Report) ratioGoal(text string, limit float64, nc Case, ns System, dc Case, ds System, col func(Sample) float64) Goal {
	g := Goal{Text: text, Limit: limit}
	num, ok1 := r.find(nc, ns)
	den, ok2 := r.find(dc, ds)
	switch {
	case !ok1:
		g.Missing = fmt.Sprintf("no successful run of %s in %s", ns.Name, nc.Name)
	case !ok2:
		g.Missing = fmt.Sprintf("no successful run of %s in %s", ds.Name, dc.Name)
	}
	if g.Missing != "" {
		return g
	}
	n, d := num.stat(col).Median, den.stat(col).Median
	if d <= 0 {
		g.Missing = fmt.Sprintf("%s's median in %s is 0", ds.Name, dc.Name)
		return g
	}
	g.Ratio = n / d
	g.Met = g.Ratio <= limit
	return g
}
