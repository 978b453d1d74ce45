package vmmtest

import (
	"bytes"
	"errors"
	"math/bits"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
)

// Config says what Run tests.
type Config struct {
	// Backend creates the VMs under test.
	Backend vmm.Backend
	// Spec is the spec of every VM created; keep its memory small (a few
	// MiB), as some checks copy all of it.
	Spec vmm.Spec
	// RunFor is how long a guest runs between checks; default 30ms.
	RunFor time.Duration
	// GuestWrites says the booted guest writes memory and samples its TSC
	// on its own; the checks then require that it did.
	GuestWrites bool
}

// Run runs the conformance checks against cfg.Backend, each as a subtest.
func Run(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.RunFor <= 0 {
		cfg.RunFor = 30 * time.Millisecond
	}
	s := suite{cfg: cfg}
	t.Run("Lifecycle", s.lifecycle)
	t.Run("Memory", s.memory)
	t.Run("DirtyBits", s.dirtyBits)
	t.Run("DirtyTracking", s.dirtyTracking)
	t.Run("TimeDataRead", s.timeDataRead)
	t.Run("TimeDataWrite", s.timeDataWrite)
	t.Run("DeviceErrors", s.deviceErrors)
	t.Run("Continuity", s.continuity)
	t.Run("Migrate", s.migrate)
}

type suite struct{ cfg Config }

// newVM creates a VM that the test destroys at its end.
func (s suite) newVM(t *testing.T) vmm.VM {
	t.Helper()
	vm, err := s.cfg.Backend.New(s.cfg.Spec)
	if err != nil {
		t.Fatalf("New(%+v): %v", s.cfg.Spec, err)
	}
	t.Cleanup(func() {
		if err := vm.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	if got := vm.State(); got != vmm.StateCreated {
		t.Fatalf("new VM state = %s, want created", got)
	}
	return vm
}

// bootedPaused boots a VM, lets it run and pauses it.
func (s suite) bootedPaused(t *testing.T) vmm.VM {
	t.Helper()
	vm := s.newVM(t)
	must(t, "Boot", vm.Boot(t.Context()))
	time.Sleep(s.cfg.RunFor)
	must(t, "Pause", vm.Pause(t.Context()))
	return vm
}

// progressBudget bounds how long a check waits for a starved guest (a
// loaded CI machine) to make the progress it asserts.
const progressBudget = 10 * time.Second

// runUntil resumes vm, lets it run for RunFor at a time and pauses it,
// until its TSC ring's newest sample is past last (or, for a guest that
// does not write on its own, once). It returns the ring's state.
func (s suite) runUntil(t *testing.T, vm vmm.VM, last uint64) vmm.Continuity {
	t.Helper()
	ctx := t.Context()
	deadline := time.Now().Add(progressBudget)
	for {
		must(t, "Resume", vm.Resume(ctx))
		time.Sleep(s.cfg.RunFor)
		must(t, "Pause", vm.Pause(ctx))
		c, err := vm.GuestContinuity()
		must(t, "GuestContinuity", err)
		if !s.cfg.GuestWrites || (c.Samples > 0 && c.Last > last) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new TSC sample past %d within %v (%d samples)", last, progressBudget, c.Samples)
		}
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one wrapping %q", what, err, target)
	}
}

func (s suite) lifecycle(t *testing.T) {
	ctx := t.Context()
	vm := s.newVM(t)
	steps := []struct {
		name  string
		op    func() error
		want  error
		state vmm.State
	}{
		{"pause created", func() error { return vm.Pause(ctx) }, vmm.ErrInvalidState, vmm.StateCreated},
		{"boot", func() error { return vm.Boot(ctx) }, nil, vmm.StateRunning},
		{"boot running", func() error { return vm.Boot(ctx) }, vmm.ErrInvalidState, vmm.StateRunning},
		{"resume running", func() error { return vm.Resume(ctx) }, vmm.ErrInvalidState, vmm.StateRunning},
		{"pause", func() error { return vm.Pause(ctx) }, nil, vmm.StatePaused},
		{"pause paused", func() error { return vm.Pause(ctx) }, vmm.ErrInvalidState, vmm.StatePaused},
		{"boot paused", func() error { return vm.Boot(ctx) }, vmm.ErrInvalidState, vmm.StatePaused},
		{"resume", func() error { return vm.Resume(ctx) }, nil, vmm.StateRunning},
		{"destroy", vm.Destroy, nil, vmm.StateDestroyed},
		{"destroy again", vm.Destroy, nil, vmm.StateDestroyed},
		{"resume destroyed", func() error { return vm.Resume(ctx) }, vmm.ErrDestroyed, vmm.StateDestroyed},
		{"pause destroyed", func() error { return vm.Pause(ctx) }, vmm.ErrDestroyed, vmm.StateDestroyed},
		{"read destroyed", func() error { return vm.ReadPages(0, make([]byte, vmm.PageSize)) }, vmm.ErrDestroyed, vmm.StateDestroyed},
		{"dirty destroyed", func() error { return vm.TakeDirty(0, 1, make([]uint64, 1)) }, vmm.ErrDestroyed, vmm.StateDestroyed},
		{"time destroyed", func() error { _, err := vm.ReadTimeData(ctx); return err }, vmm.ErrDestroyed, vmm.StateDestroyed},
	}
	for _, st := range steps {
		err := st.op()
		if st.want == nil && err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if st.want != nil {
			wantErr(t, st.name, err, st.want)
		}
		if got := vm.State(); got != st.state {
			t.Fatalf("after %s: state %s, want %s", st.name, got, st.state)
		}
	}
}

// pattern returns n pages whose bytes depend on page and salt.
func pattern(first, n uint64, salt byte) []byte {
	b := make([]byte, n*vmm.PageSize)
	for i := range b {
		b[i] = byte(uint64(i)/vmm.PageSize+first) ^ byte(i) ^ salt
	}
	return b
}

func (s suite) memory(t *testing.T) {
	vm := s.newVM(t)
	pages := vm.Spec().Pages()
	if pages < 8 {
		t.Fatalf("spec has %d pages; the suite needs at least 8", pages)
	}
	src := pattern(2, 3, 0x5a)
	must(t, "WritePages", vm.WritePages(2, src))
	got := make([]byte, len(src))
	must(t, "ReadPages", vm.ReadPages(2, got))
	if !bytes.Equal(got, src) {
		t.Errorf("ReadPages returned different bytes than WritePages wrote")
	}
	must(t, "ZeroPages", vm.ZeroPages(3, 1))
	must(t, "ReadPages", vm.ReadPages(2, got))
	want := append(append(append([]byte(nil), src[:vmm.PageSize]...), make([]byte, vmm.PageSize)...), src[2*vmm.PageSize:]...)
	if !bytes.Equal(got, want) {
		t.Errorf("ZeroPages(3, 1) did not zero exactly page 3")
	}
	last := pages - 1
	must(t, "write last page", vm.WritePages(last, pattern(last, 1, 1)))

	// Host writes are not guest writes: they leave the dirty log alone.
	bitmap := make([]uint64, (pages+63)/64)
	must(t, "TakeDirty", vm.TakeDirty(0, pages, bitmap))
	if n := popcount(bitmap); n != 0 {
		t.Errorf("host writes marked %d pages dirty, want 0", n)
	}

	bad := []struct {
		name   string
		op     func() error
		target error
	}{
		{"read past end", func() error { return vm.ReadPages(last, make([]byte, 2*vmm.PageSize)) }, vmm.ErrOutOfRange},
		{"read beyond memory", func() error { return vm.ReadPages(pages+10, make([]byte, vmm.PageSize)) }, vmm.ErrOutOfRange},
		{"read huge first", func() error { return vm.ReadPages(^uint64(0), make([]byte, vmm.PageSize)) }, vmm.ErrOutOfRange},
		{"write past end", func() error { return vm.WritePages(last, make([]byte, 2*vmm.PageSize)) }, vmm.ErrOutOfRange},
		{"zero past end", func() error { return vm.ZeroPages(1, pages) }, vmm.ErrOutOfRange},
		{"take past end", func() error { return vm.TakeDirty(1, pages, bitmap) }, vmm.ErrOutOfRange},
		{"restore past end", func() error { return vm.RestoreDirty(pages, 1, bitmap) }, vmm.ErrOutOfRange},
		{"read partial page", func() error { return vm.ReadPages(0, make([]byte, vmm.PageSize+1)) }, nil},
		{"write partial page", func() error { return vm.WritePages(0, make([]byte, 100)) }, nil},
		{"bitmap too short", func() error { return vm.TakeDirty(0, 65, make([]uint64, 1)) }, nil},
	}
	for _, tc := range bad {
		err := tc.op()
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.name)
		case tc.target != nil:
			wantErr(t, tc.name, err, tc.target)
		}
	}
}

func popcount(bitmap []uint64) int {
	n := 0
	for _, w := range bitmap {
		n += bits.OnesCount64(w)
	}
	return n
}

func bit(bitmap []uint64, i uint64) bool { return bitmap[i/64]&(1<<(i%64)) != 0 }

// dirtyBits checks TakeDirty and RestoreDirty on a VM whose guest is not
// running, so the log holds only what the test puts there.
func (s suite) dirtyBits(t *testing.T) {
	vm := s.newVM(t)
	pages := vm.Spec().Pages()
	all := make([]uint64, (pages+63)/64)
	must(t, "clear", vm.TakeDirty(0, pages, all))
	ranges := []struct{ first, count uint64 }{
		{0, pages}, {0, 1}, {1, 63}, {63, 2}, {64, 64}, {5, 200}, {100, 1}, {pages - 3, 3}, {pages / 2, pages - pages/2}, {7, 0},
	}
	patterns := []struct {
		name string
		set  func(i uint64) bool
	}{
		{"all", func(uint64) bool { return true }},
		{"every third", func(i uint64) bool { return i%3 == 0 }},
		{"word edges", func(i uint64) bool { return i%64 == 0 || i%64 == 63 }},
	}
	for _, r := range ranges {
		if r.first+r.count > pages {
			continue
		}
		for _, p := range patterns {
			in := make([]uint64, (r.count+63)/64+1)
			want := 0
			for i := range r.count {
				if p.set(i) {
					in[i/64] |= 1 << (i % 64)
					want++
				}
			}
			// Bits past count must be ignored by RestoreDirty.
			in[len(in)-1] |= ^uint64(0) << (r.count % 64)
			must(t, "RestoreDirty", vm.RestoreDirty(r.first, r.count, in))

			must(t, "TakeDirty all", vm.TakeDirty(0, pages, all))
			if n := popcount(all); n != want {
				t.Errorf("range [%d,+%d) %s: %d bits dirty, want %d", r.first, r.count, p.name, n, want)
			}
			for i := range r.count {
				if bit(all, r.first+i) != p.set(i) {
					t.Errorf("range [%d,+%d) %s: page %d dirty=%v", r.first, r.count, p.name, r.first+i, !p.set(i))
					break
				}
			}
			must(t, "TakeDirty again", vm.TakeDirty(0, pages, all))
			if n := popcount(all); n != 0 {
				t.Errorf("range [%d,+%d) %s: %d bits still dirty after TakeDirty", r.first, r.count, p.name, n)
			}
		}
	}

	// TakeDirty of a sub-range clears that range only, and reports it at
	// bit 0 of its bitmap.
	ones := make([]uint64, len(all))
	for i := range ones {
		ones[i] = ^uint64(0)
	}
	must(t, "RestoreDirty all", vm.RestoreDirty(0, pages, ones))
	const first, count = 10, 70
	sub := make([]uint64, 2)
	sub[1] = 0xdead // overwritten, not ORed
	must(t, "TakeDirty sub-range", vm.TakeDirty(first, count, sub))
	if n := popcount(sub); n != count {
		t.Errorf("sub-range take: %d bits, want %d", n, count)
	}
	must(t, "TakeDirty rest", vm.TakeDirty(0, pages, all))
	if n := popcount(all); uint64(n) != pages-count {
		t.Errorf("after sub-range take: %d dirty, want %d", n, pages-count)
	}
	for i := uint64(first); i < first+count; i++ {
		if bit(all, i) {
			t.Errorf("page %d still dirty after its range was taken", i)
			break
		}
	}
}

// dirtyTracking checks the property a migration relies on: every page
// whose content changed while the guest ran is in the dirty log, even
// while the log is read and cleared concurrently with the guest's writes.
func (s suite) dirtyTracking(t *testing.T) {
	ctx := t.Context()
	vm := s.bootedPaused(t)
	pages := vm.Spec().Pages()
	dirty := make([]uint64, (pages+63)/64)
	must(t, "clear log", vm.TakeDirty(0, pages, dirty))
	before := make([]byte, pages*vmm.PageSize)
	must(t, "snapshot", vm.ReadPages(0, before))

	must(t, "Resume", vm.Resume(ctx))
	// Take the log in pieces while the guest writes, as live rounds do,
	// and accumulate what was taken.
	taken := make([]uint64, len(dirty))
	part := make([]uint64, len(dirty))
	start := time.Now()
	for {
		elapsed := time.Since(start)
		if elapsed > progressBudget || (elapsed > s.cfg.RunFor && (!s.cfg.GuestWrites || popcount(taken) > 0)) {
			break
		}
		for first := uint64(0); first < pages; first += 192 {
			n := min(192, pages-first)
			must(t, "TakeDirty", vm.TakeDirty(first, n, part))
			for i := range n {
				if bit(part, i) {
					taken[(first+i)/64] |= 1 << ((first + i) % 64)
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	must(t, "Pause", vm.Pause(ctx))
	must(t, "TakeDirty final", vm.TakeDirty(0, pages, part))
	after := make([]byte, len(before))
	must(t, "snapshot", vm.ReadPages(0, after))

	changed, missed := 0, 0
	for p := range pages {
		if bit(part, p) {
			taken[p/64] |= 1 << (p % 64)
		}
		off := p * vmm.PageSize
		if bytes.Equal(before[off:off+vmm.PageSize], after[off:off+vmm.PageSize]) {
			continue
		}
		changed++
		if !bit(taken, p) {
			missed++
			if missed <= 5 {
				t.Errorf("page %d changed but was never reported dirty", p)
			}
		}
	}
	t.Logf("%d pages changed, %d reported dirty", changed, popcount(taken))
	if missed > 0 {
		t.Errorf("%d changed pages missing from the dirty log", missed)
	}
	if s.cfg.GuestWrites && changed == 0 {
		t.Errorf("the guest changed no page in %v", s.cfg.RunFor)
	}
}

func (s suite) timeDataRead(t *testing.T) {
	ctx := t.Context()
	vm := s.newVM(t)
	must(t, "Boot", vm.Boot(ctx))
	prev, err := vm.ReadTimeData(ctx)
	must(t, "ReadTimeData", err)
	if prev.GuestFreq == 0 {
		t.Fatalf("guest frequency 0")
	}
	for range 50 {
		d, err := vm.ReadTimeData(ctx)
		must(t, "ReadTimeData", err)
		if d.GuestTSC < prev.GuestTSC || d.Hrtime < prev.Hrtime {
			t.Fatalf("time went backwards: %+v then %+v", prev, d)
		}
		if d.BootHrtime != prev.BootHrtime || d.GuestFreq != prev.GuestFreq {
			t.Fatalf("boot_hrtime or frequency changed while running: %+v then %+v", prev, d)
		}
		if _, ok := d.GuestUptime(); !ok {
			t.Fatalf("hrtime %d before boot_hrtime %d", d.Hrtime, d.BootHrtime)
		}
		prev = d
	}
}

func (s suite) timeDataWrite(t *testing.T) {
	ctx := t.Context()
	vm := s.newVM(t)
	clock := vm.Clock()
	now, wall := clock.Now()
	base, err := vm.ReadTimeData(ctx)
	must(t, "ReadTimeData", err)
	const hour = int64(time.Hour)
	valid := timedata.Data{GuestFreq: base.GuestFreq, GuestTSC: 1 << 40, Hrtime: now, Wallclock: wall, BootHrtime: now - 10*int64(time.Second)}

	refused := []struct {
		name   string
		modify func(d *timedata.Data)
	}{
		{"frequency 0", func(d *timedata.Data) { d.GuestFreq = 0 }},
		{"hrtime in the future", func(d *timedata.Data) { d.Hrtime = now + hour }},
		{"boot_hrtime in the future", func(d *timedata.Data) { d.BootHrtime = now + hour }},
	}
	for _, tc := range refused {
		d := valid
		tc.modify(&d)
		_, err := vm.WriteTimeData(ctx, d)
		wantErr(t, tc.name, err, vmm.ErrTimeData)
		after, err := vm.ReadTimeData(ctx)
		must(t, "ReadTimeData", err)
		if after.BootHrtime != base.BootHrtime || after.GuestFreq != base.GuestFreq {
			t.Errorf("%s: refused write changed time data: %+v, was %+v", tc.name, after, base)
		}
	}

	// Latency correction: data snapshotted 5 ms ago gains 5 ms of ticks.
	const latency = 5 * int64(time.Millisecond)
	d := valid
	now, _ = clock.Now()
	d.Hrtime = now - latency
	d.BootHrtime = now - hour
	w, err := vm.WriteTimeData(ctx, d)
	must(t, "WriteTimeData", err)
	if w.Latency < latency {
		t.Errorf("latency %d ns, want at least %d", w.Latency, latency)
	}
	wantTicks, err := timedata.TSCDelta(uint64(w.Latency)/timedata.NsPerSec, uint32(uint64(w.Latency)%timedata.NsPerSec), d.GuestFreq)
	must(t, "TSCDelta", err)
	if w.TSCCorrection != wantTicks {
		t.Errorf("TSC correction %d ticks for %d ns at %d Hz, want %d", w.TSCCorrection, w.Latency, d.GuestFreq, wantTicks)
	}
	if w.Applied.GuestTSC != d.GuestTSC+w.TSCCorrection {
		t.Errorf("applied guest TSC %d, want %d + %d", w.Applied.GuestTSC, d.GuestTSC, w.TSCCorrection)
	}
	if w.Applied.BootHrtime != d.BootHrtime || w.Applied.GuestFreq != d.GuestFreq {
		t.Errorf("applied %+v, want boot_hrtime %d and frequency %d verbatim", w.Applied, d.BootHrtime, d.GuestFreq)
	}
	if w.Duration < 0 {
		t.Errorf("negative duration %d", w.Duration)
	}
	got, err := vm.ReadTimeData(ctx)
	must(t, "ReadTimeData", err)
	if got.BootHrtime != d.BootHrtime {
		t.Errorf("boot_hrtime reads %d after writing %d", got.BootHrtime, d.BootHrtime)
	}
	if got.GuestTSC < w.Applied.GuestTSC {
		t.Errorf("guest TSC reads %d, below the %d just applied", got.GuestTSC, w.Applied.GuestTSC)
	}

	must(t, "Boot", vm.Boot(ctx))
	_, err = vm.WriteTimeData(ctx, valid)
	wantErr(t, "write while running", err, vmm.ErrInvalidState)
}

func (s suite) deviceErrors(t *testing.T) {
	ctx := t.Context()
	vm := s.bootedPaused(t)
	states, err := vm.ExportDevices(ctx)
	must(t, "ExportDevices", err)
	if len(states) != len(vm.Spec().Devices) {
		t.Errorf("exported %d devices, spec lists %d", len(states), len(vm.Spec().Devices))
	}
	for _, st := range states {
		tweaks := []struct {
			name   string
			modify func(d *vmm.DeviceState)
			target error
		}{
			{"unknown name", func(d *vmm.DeviceState) { d.Name = "no-such-device" }, vmm.ErrUnknownDevice},
			{"other kind", func(d *vmm.DeviceState) { d.Kind += "-other" }, vmm.ErrUnknownDevice},
			{"newer version", func(d *vmm.DeviceState) { d.Version += 1000 }, vmm.ErrDeviceVersion},
			{"version 0", func(d *vmm.DeviceState) { d.Version = 0 }, vmm.ErrDeviceVersion},
			{"empty data", func(d *vmm.DeviceState) { d.Data = nil }, vmm.ErrDeviceData},
			{"truncated", func(d *vmm.DeviceState) { d.Data = d.Data[:len(d.Data)/2] }, vmm.ErrDeviceData},
			{"trailing bytes", func(d *vmm.DeviceState) { d.Data = append(append([]byte(nil), d.Data...), 0xff) }, vmm.ErrDeviceData},
		}
		for _, tw := range tweaks {
			if tw.target == vmm.ErrDeviceData && len(st.Data) < 2 {
				continue // nothing to truncate in a (nearly) stateless device
			}
			d := st
			tw.modify(&d)
			err := vm.ImportDevices(ctx, []vmm.DeviceState{d})
			wantErr(t, st.Name+": "+tw.name, err, tw.target)
		}
	}
	wantErr(t, "duplicate device", vm.ImportDevices(ctx, append(states, states[0])), vmm.ErrDeviceData)
	after, err := vm.ExportDevices(ctx)
	must(t, "ExportDevices", err)
	if !equalStates(states, after) {
		t.Errorf("refused imports changed device state")
	}
	must(t, "ImportDevices own state", vm.ImportDevices(ctx, states))
	must(t, "Resume", vm.Resume(ctx))
	wantErr(t, "import while running", vm.ImportDevices(ctx, states), vmm.ErrInvalidState)
	_, err = vm.ExportDevices(ctx)
	wantErr(t, "export while running", err, vmm.ErrInvalidState)
}

func equalStates(a, b []vmm.DeviceState) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Kind != b[i].Kind || a[i].Version != b[i].Version || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func (s suite) continuity(t *testing.T) {
	vm := s.newVM(t)
	must(t, "Boot", vm.Boot(t.Context()))
	must(t, "Pause", vm.Pause(t.Context()))
	var last uint64
	for round := range 3 {
		c := s.runUntil(t, vm, last)
		if !c.Monotonic {
			t.Fatalf("round %d: guest TSC went backwards at sample %d", round, c.FirstBad)
		}
		last = c.Last
	}
}

// migrate moves a running guest into a second VM and checks that memory
// arrives intact, device state round-trips, and the guest's TSC stays
// monotonic across the move.
func (s suite) migrate(t *testing.T) {
	ctx := t.Context()
	src := s.newVM(t)
	must(t, "Boot", src.Boot(ctx))
	time.Sleep(s.cfg.RunFor)
	dst, err := s.cfg.Backend.New(src.Spec())
	must(t, "New destination", err)
	t.Cleanup(func() { _ = dst.Destroy() })

	res, err := Migrate(ctx, src, dst, 3)
	must(t, "Migrate", err)
	t.Logf("pages per round: %v; kernel correction %d ticks for %d ns", res.RoundPages, res.Write.TSCCorrection, res.Write.Latency)

	srcSum, err := vmm.Checksum(src)
	must(t, "Checksum source", err)
	dstSum, err := vmm.Checksum(dst)
	must(t, "Checksum destination", err)
	if srcSum != dstSum {
		t.Fatalf("memory differs after migration: source %#x, destination %#x", srcSum, dstSum)
	}
	srcStates, err := src.ExportDevices(ctx)
	must(t, "ExportDevices source", err)
	dstStates, err := dst.ExportDevices(ctx)
	must(t, "ExportDevices destination", err)
	if !equalStates(srcStates, dstStates) {
		t.Errorf("device state does not round-trip through a migration")
	}
	before, err := src.GuestContinuity()
	must(t, "GuestContinuity source", err)

	after := s.runUntil(t, dst, before.Last)
	if !after.Monotonic {
		t.Errorf("guest TSC went backwards across the migration at sample %d", after.FirstBad)
	}
	if after.Last < res.Source.GuestTSC && s.cfg.GuestWrites {
		t.Errorf("destination guest's TSC %d below the source's final %d", after.Last, res.Source.GuestTSC)
	}
}
