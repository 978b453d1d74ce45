package sim_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/vmm/vmmtest"
)

const day = int64(24 * time.Hour)

// newSim creates a small sim VM destroyed when the test ends.
func newSim(t *testing.T, opts ...sim.Option) *sim.VM {
	t.Helper()
	b, err := sim.New(append([]sim.Option{sim.WithMemory(2 << 20)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := b.NewVM(vmm.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vm.Destroy() })
	return vm
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		opts []sim.Option
		want string
	}{
		{"unaligned memory", []sim.Option{sim.WithMemory(1<<20 + 1)}, "not a multiple"},
		{"memory only for the ring", []sim.Option{sim.WithMemory(sim.RingPages * vmm.PageSize)}, "no page for the workload"},
		{"no vcpus", []sim.Option{sim.WithVCPUs(0)}, "at least 1"},
		{"too many vcpus", []sim.Option{sim.WithVCPUs(100000)}, "at most"},
		{"negative rate", []sim.Option{sim.WithDirtyRate(-1)}, "negative"},
		{"zero timer period", []sim.Option{sim.WithTimerPeriod(0)}, "timer period"},
		// More than any test host has: refused, where make would kill the process.
		{"64 TiB of memory", []sim.Option{sim.WithMemory(64 << 40)}, "does not fit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sim.New(tc.opts...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestBackendNewChecksSpec(t *testing.T) {
	b, err := sim.New(sim.WithMemory(1 << 20))
	if err != nil {
		t.Fatal(err)
	}
	two := b.DefaultSpec()
	two.VCPUs = 2
	two.Devices = nil // zero devices: take this backend's for 2 vCPUs
	tests := []struct {
		name    string
		spec    vmm.Spec
		wantErr error
	}{
		{"defaults", vmm.Spec{}, nil},
		{"own spec", b.DefaultSpec(), nil},
		{"more vcpus", two, nil},
		{"other backend", vmm.Spec{Backend: "kvm"}, vmm.ErrIncompatible},
		{"unaligned memory", vmm.Spec{MemoryBytes: 12345}, vmm.ErrIncompatible},
		{"device missing", vmm.Spec{Devices: b.DefaultSpec().Devices[1:]}, vmm.ErrIncompatible},
		{"device version", vmm.Spec{Devices: []vmm.DeviceSpec{{Name: "vcpu0", Kind: "vcpu", Version: 9}}}, vmm.ErrIncompatible},
		{"64 TiB of memory", vmm.Spec{MemoryBytes: 64 << 40}, vmm.ErrCapacity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vm, err := b.New(tc.spec)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				defer vm.Destroy()
				if vm.Spec().Backend != sim.BackendName || vm.Spec().Pages() == 0 {
					t.Errorf("spec %+v", vm.Spec())
				}
			}
		})
	}
}

// TestTimeDataManualClock checks the exact arithmetic against a clock that
// only moves when told.
func TestTimeDataManualClock(t *testing.T) {
	ctx := t.Context()
	const freq = 2_500_000_000
	clock := vmmtest.NewManualClock(30*day, timedata.Wallclock{Sec: 1_700_000_000})
	vm := newSim(t, sim.WithClock(clock), sim.WithTSCFrequency(freq), sim.WithDirtyRate(0))

	must(t, vm.Boot(ctx))
	must(t, vm.Pause(ctx))
	clock.Advance(2 * int64(time.Second))
	d, err := vm.ReadTimeData(ctx)
	must(t, err)
	want := timedata.Data{GuestFreq: freq, GuestTSC: 5_000_000_000, Hrtime: 30*day + 2e9,
		Wallclock: timedata.Wallclock{Sec: 1_700_000_002}, BootHrtime: 30 * day}
	if d != want {
		t.Fatalf("ReadTimeData = %+v, want %+v", d, want)
	}

	// A write whose snapshot is 1.5 µs old: bhyve adds 1.5 µs of ticks
	// (3750 at 2.5 GHz) to the TSC and installs boot_hrtime as given.
	in := timedata.Data{GuestFreq: freq, GuestTSC: 1 << 50, Hrtime: d.Hrtime - 1500, BootHrtime: 7 * day,
		Wallclock: timedata.Wallclock{Sec: 1}}
	w, err := vm.WriteTimeData(ctx, in)
	must(t, err)
	if w.Latency != 1500 || w.TSCCorrection != 3750 || w.Applied.GuestTSC != 1<<50+3750 || w.Applied.BootHrtime != 7*day {
		t.Errorf("TimeWrite = %+v", w)
	}
	clock.Advance(1000)
	d, err = vm.ReadTimeData(ctx)
	must(t, err)
	if d.GuestTSC != 1<<50+3750+2500 || d.BootHrtime != 7*day {
		t.Errorf("after the write and 1 µs: %+v", d)
	}
	if d.Wallclock.Sec != 1_700_000_002 {
		t.Errorf("the written wall clock was not ignored: %v", d.Wallclock)
	}

	// The boundary: hrtime and boot_hrtime equal to now are not future.
	now, _ := clock.Now()
	_, err = vm.WriteTimeData(ctx, timedata.Data{GuestFreq: freq, Hrtime: now, BootHrtime: now})
	must(t, err)
	refusals := []struct {
		name  string
		data  timedata.Data
		field string
	}{
		{"frequency 0", timedata.Data{Hrtime: now}, "guest frequency is 0"},
		{"hrtime 1 ns ahead", timedata.Data{GuestFreq: freq, Hrtime: now + 1}, "hrtime"},
		{"boot_hrtime 1 ns ahead", timedata.Data{GuestFreq: freq, Hrtime: now, BootHrtime: now + 1}, "boot_hrtime"},
	}
	for _, r := range refusals {
		_, err := vm.WriteTimeData(ctx, r.data)
		if !errors.Is(err, vmm.ErrTimeData) || !strings.Contains(err.Error(), r.field) {
			t.Errorf("%s: error %v, want ErrTimeData naming %q", r.name, err, r.field)
		}
	}
}

// waitWorkload polls a running VM until its workload satisfies done, so
// tests assert progress without betting on scheduling on a loaded machine.
func waitWorkload(t *testing.T, vm *sim.VM, done func(sim.WorkloadStats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !done(vm.Workload()) {
		if time.Now().After(deadline) {
			t.Fatalf("guest made no progress in 10s: %+v", vm.Workload())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wrotePages(s sim.WorkloadStats) bool { return s.PagesWritten > 0 }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestFreshGuestTSCCountsFromBoot(t *testing.T) {
	ctx := t.Context()
	vm := newSim(t, sim.WithTSCFrequency(1_000_000_000))
	must(t, vm.Boot(ctx))
	d, err := vm.ReadTimeData(ctx)
	must(t, err)
	up, _ := d.GuestUptime()
	if d.GuestTSC != uint64(up) {
		t.Errorf("guest TSC %d at 1 GHz after %d ns of uptime", d.GuestTSC, up)
	}
}

// TestTimerRebasedAcrossMigration is propolis's worked example: a guest up
// 5 days on a host up 30 days, its timer due 1 s later, moves to a host up
// 100 days and must find its timer due 1 s after the move.
func TestTimerRebasedAcrossMigration(t *testing.T) {
	ctx := t.Context()
	wall := timedata.Wallclock{Sec: 1_700_000_000}
	srcClock := vmmtest.NewManualClock(25*day, wall)
	period := 5*day + int64(time.Second)
	src := newSim(t, sim.WithClock(srcClock), sim.WithTimerPeriod(period), sim.WithDirtyRate(0))
	must(t, src.Boot(ctx))
	must(t, src.Pause(ctx))
	srcClock.Advance(5 * day)
	before := src.Timer()
	if before.Deadline != 30*day+int64(time.Second) || before.SinceBoot != period {
		t.Fatalf("source timer %+v", before)
	}

	// The destination host is up 100 days; its wall clock reads 2 ms later.
	dstClock := vmmtest.NewManualClock(100*day, timedata.Wallclock{Sec: 1_700_000_000 + 5*86400, Nsec: 2_000_000})
	b, err := sim.New(sim.WithMemory(2<<20), sim.WithClock(dstClock))
	must(t, err)
	dst, err := b.NewVM(src.Spec())
	must(t, err)
	defer dst.Destroy()
	res, err := vmmtest.Migrate(ctx, src, dst, 0)
	must(t, err)

	newBoot := 95*day - 2_000_000
	if res.Adjusted.BootHrtime != newBoot {
		t.Fatalf("adjusted boot_hrtime %d, want %d", res.Adjusted.BootHrtime, newBoot)
	}
	after := dst.Timer()
	if after.SinceBoot != before.SinceBoot || after.Deadline != newBoot+period || !after.Armed {
		t.Errorf("destination timer %+v, want %d ns after boot_hrtime %d", after, period, newBoot)
	}
	// The guest sees its timer 1 s after the move, less the 2 ms the move took.
	if due := after.Deadline - 100*day; due != int64(time.Second)-2_000_000 {
		t.Errorf("timer due %d ns after arrival", due)
	}
}

func TestPauseStopsGuestWrites(t *testing.T) {
	ctx := t.Context()
	vm := newSim(t, sim.WithDirtyRate(64<<20), sim.WithVCPUs(2))
	must(t, vm.Boot(ctx))
	waitWorkload(t, vm, wrotePages)
	must(t, vm.Pause(ctx))
	pages := vm.Spec().Pages()
	bitmap := make([]uint64, (pages+63)/64)
	must(t, vm.TakeDirty(0, pages, bitmap))
	sum, err := vmm.Checksum(vm)
	must(t, err)
	stats := vm.Workload()
	if stats.PagesWritten == 0 || stats.TSCSamples == 0 {
		t.Fatalf("guest did nothing while running: %+v", stats)
	}

	time.Sleep(20 * time.Millisecond)
	n, err := vm.DirtyCount()
	must(t, err)
	again, err := vmm.Checksum(vm)
	must(t, err)
	if n != 0 || again != sum || vm.Workload() != stats {
		t.Errorf("paused guest changed: %d dirty pages, checksum %#x -> %#x, workload %+v -> %+v",
			n, sum, again, stats, vm.Workload())
	}

	must(t, vm.Resume(ctx))
	waitWorkload(t, vm, func(s sim.WorkloadStats) bool { return s.PagesWritten > stats.PagesWritten })
	must(t, vm.Pause(ctx))
	rep, err := sim.VerifyMemory(vm)
	must(t, err)
	if rep.Stamped == 0 || rep.Stamped+rep.Zero != rep.Pages {
		t.Errorf("VerifyMemory = %+v", rep)
	}
}

func TestDirtyRateIsHonoured(t *testing.T) {
	ctx := t.Context()
	const rate = 8 << 20 // 2048 pages/s
	vm := newSim(t, sim.WithMemory(64<<20), sim.WithDirtyRate(rate))
	start := time.Now()
	must(t, vm.Boot(ctx))
	time.Sleep(200 * time.Millisecond)
	waitWorkload(t, vm, wrotePages)
	must(t, vm.Pause(ctx))
	elapsed := time.Since(start)
	got := vm.Workload().PagesWritten
	// The vCPU may lag (a loaded CI machine), never lead its rate.
	if max := uint64(float64(rate)*elapsed.Seconds()/vmm.PageSize) + 1; got > max {
		t.Errorf("%d pages written in %v; the rate allows at most %d", got, elapsed, max)
	}
}

func TestVerifyMemoryFindsDamage(t *testing.T) {
	ctx := t.Context()
	vm := newSim(t, sim.WithDirtyRate(256<<20))
	must(t, vm.Boot(ctx))
	waitWorkload(t, vm, wrotePages)
	must(t, vm.Pause(ctx))
	rep, err := sim.VerifyMemory(vm)
	must(t, err)
	if rep.Stamped == 0 {
		t.Fatal("no stamped page to damage")
	}
	page := make([]byte, vmm.PageSize)
	var victim uint64
	for p := uint64(sim.RingPages); p < vm.Spec().Pages(); p++ {
		must(t, vm.ReadPages(p, page))
		if !bytes.Equal(page, make([]byte, vmm.PageSize)) {
			victim = p
			break
		}
	}
	tests := []struct {
		name   string
		damage func(p []byte)
		want   string
	}{
		{"body bit flip", func(p []byte) { p[1000] ^= 1 }, "checksum"},
		{"magic", func(p []byte) { p[0] ^= 0xff }, "magic"},
		{"moved page", func(p []byte) { p[8]++ }, "names page"},
		{"foreign vcpu", func(p []byte) { p[24] = 9 }, "vcpu 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			must(t, vm.ReadPages(victim, page))
			orig := bytes.Clone(page)
			tc.damage(page)
			must(t, vm.WritePages(victim, page))
			defer func() { must(t, vm.WritePages(victim, orig)) }()
			_, err := sim.VerifyMemory(vm)
			if !errors.Is(err, sim.ErrCorruptPage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrCorruptPage mentioning %q", err, tc.want)
			}
		})
	}
}

// TestWorkloadTravels migrates a busy two-vCPU guest and checks the
// destination carries on the same workload: counters, serial history,
// stamped memory and a monotonic TSC.
func TestWorkloadTravels(t *testing.T) {
	ctx := t.Context()
	opts := []sim.Option{sim.WithVCPUs(2), sim.WithDirtyRate(32 << 20), sim.WithTimerPeriod(int64(5 * time.Millisecond))}
	src := newSim(t, opts...)
	must(t, src.Boot(ctx))
	waitWorkload(t, src, func(s sim.WorkloadStats) bool { return s.PagesWritten > 0 && s.TimerFired > 0 })

	b, err := sim.New(append([]sim.Option{sim.WithMemory(2 << 20)}, opts...)...)
	must(t, err)
	dst, err := b.NewVM(src.Spec())
	must(t, err)
	defer dst.Destroy()
	if _, err := vmmtest.Migrate(ctx, src, dst, 2); err != nil {
		t.Fatal(err)
	}
	srcStats := src.Workload()
	if dst.Workload() != srcStats {
		t.Fatalf("workload %+v arrived as %+v", srcStats, dst.Workload())
	}
	if !bytes.Contains(src.SerialOutput(), []byte("tick")) || !bytes.Equal(dst.SerialOutput(), src.SerialOutput()) {
		t.Fatalf("serial history did not travel:\nsource %q\ndestination %q", src.SerialOutput(), dst.SerialOutput())
	}
	srcRep, err := sim.VerifyMemory(src)
	must(t, err)

	must(t, dst.Resume(ctx))
	// Carrying on means counting on from the source's counters.
	waitWorkload(t, dst, func(s sim.WorkloadStats) bool {
		return s.PagesWritten > srcStats.PagesWritten && s.TimerFired > srcStats.TimerFired
	})
	must(t, dst.Pause(ctx))
	dstRep, err := sim.VerifyMemory(dst)
	must(t, err)
	if dstRep.MaxSeq <= srcRep.MaxSeq {
		t.Errorf("write sequence did not continue: %d then %d", srcRep.MaxSeq, dstRep.MaxSeq)
	}
	c, err := dst.GuestContinuity()
	must(t, err)
	if !c.Monotonic || c.Samples == 0 {
		t.Errorf("destination continuity %+v", c)
	}
}

func TestGuestContinuityNeedsARing(t *testing.T) {
	vm := newSim(t)
	if _, err := vm.GuestContinuity(); !errors.Is(err, sim.ErrNoRing) {
		t.Errorf("error %v, want ErrNoRing", err)
	}
}

// TestContinuityAcrossRingWrap runs the guest long enough to wrap the ring
// several times while pausing and resuming.
func TestContinuityAcrossRingWrap(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the guest for a while")
	}
	ctx := t.Context()
	vm := newSim(t, sim.WithVCPUs(4), sim.WithDirtyRate(0))
	must(t, vm.Boot(ctx))
	for vm.Workload().TSCSamples < 2*sim.RingCapacity {
		time.Sleep(50 * time.Millisecond)
		must(t, vm.Pause(ctx))
		c, err := vm.GuestContinuity()
		must(t, err)
		if !c.Monotonic {
			t.Fatalf("TSC went backwards at sample %d of %d", c.FirstBad, c.Samples)
		}
		must(t, vm.Resume(ctx))
	}
	c, err := vm.GuestContinuity()
	must(t, err)
	if c.Samples != sim.RingCapacity || !c.Monotonic {
		t.Errorf("wrapped ring: %+v", c)
	}
}

func TestContextCancelled(t *testing.T) {
	vm := newSim(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := vm.Boot(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Boot: %v", err)
	}
	if _, err := vm.ReadTimeData(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadTimeData: %v", err)
	}
}

// A throttled guest dirties memory at (100−p) % of its rate: three VMs,
// throttled at 0, 50 and 90 %, run side by side over one window, so that
// a busy machine slows them alike and their ratios still show.
func TestThrottleSlowsTheGuest(t *testing.T) {
	ctx := t.Context()
	const rate = 8 << 20 // 2048 pages/s
	percents := []int{0, 50, 90}
	vms := make([]*sim.VM, len(percents))
	for i, p := range percents {
		vms[i] = newSim(t, sim.WithMemory(16<<20), sim.WithDirtyRate(rate))
		must(t, vms[i].SetThrottle(p))
		must(t, vms[i].Boot(ctx))
	}
	// Past the first throttle sleep of the slowest, so every VM is in its
	// steady cycle of running and sleeping.
	time.Sleep(200 * time.Millisecond)
	before := make([]uint64, len(vms))
	for i, vm := range vms {
		before[i] = vm.Workload().PagesWritten
	}
	const window = time.Second
	time.Sleep(window)
	wrote := make([]uint64, len(vms))
	for i, vm := range vms {
		wrote[i] = vm.Workload().PagesWritten - before[i]
	}
	t.Logf("pages written in %v at throttle %v %%: %v", window, percents, wrote)
	full := float64(wrote[0])
	if limit := float64(rate) / vmm.PageSize * window.Seconds(); full < limit/4 {
		t.Fatalf("the unthrottled guest wrote %v pages in %v, a quarter of its rate is %v: too busy a machine to compare", full, window, limit/4)
	}
	for i, p := range percents[1:] {
		got := float64(wrote[i+1]) / full
		want := float64(100-p) / 100
		// ±0.1: the window cuts a run-and-sleep cycle (at 90 %, 100 ms)
		// somewhere.
		if got < want-0.1 || got > want+0.1 {
			t.Errorf("throttled at %d %%, the guest wrote %.2f of the unthrottled one's pages, want %.2f ± 0.1", p, got, want)
		}
	}
}

func TestSetThrottle(t *testing.T) {
	ctx := t.Context()
	vm := newSim(t, sim.WithDirtyRate(0))
	for _, p := range []int{-1, vmm.MaxThrottle + 1} {
		if err := vm.SetThrottle(p); !errors.Is(err, vmm.ErrThrottleRange) {
			t.Errorf("SetThrottle(%d) = %v, want ErrThrottleRange", p, err)
		}
	}
	must(t, vm.SetThrottle(40))
	must(t, vm.Boot(ctx))
	must(t, vm.Pause(ctx))
	must(t, vm.Resume(ctx))
	if got := vm.Throttle(); got != 40 {
		t.Errorf("throttle %d %% after a pause and resume, want the 40 %% set before", got)
	}
	must(t, vm.SetThrottle(0))
	if got := vm.Throttle(); got != 0 {
		t.Errorf("throttle %d %% after SetThrottle(0)", got)
	}
	must(t, vm.Destroy())
	if err := vm.SetThrottle(0); !errors.Is(err, vmm.ErrDestroyed) {
		t.Errorf("SetThrottle on a destroyed VM = %v, want ErrDestroyed", err)
	}
}
