//go:build linux && amd64

package kvm

import (
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
)

func backendForTest(tb testing.TB, opts ...Option) *Backend {
	tb.Helper()
	if _, err := os.Stat(DevicePath); errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("no %s on this host", DevicePath)
	}
	b, err := New(opts...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return b
}

func bootedVM(tb testing.TB, b *Backend) *VM {
	tb.Helper()
	vm, err := b.NewVM(b.DefaultSpec())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = vm.Destroy() })
	if err := vm.Boot(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	return vm
}

// TestGuestRuns boots the guest and checks from the host that it does what
// its program says: TSC samples in the ring, exits with samples, and page
// writes that KVM's dirty log reports, at about the configured rate.
func TestGuestRuns(t *testing.T) {
	const rate = 16 << 20
	b := backendForTest(t, WithMemory(16<<20), WithDirtyRate(rate))
	t.Logf("TSC offset probe: %v", b.TSCOffsetProbe())
	vm := bootedVM(t, b)
	pages := vm.Spec().Pages()
	bitmap := make([]uint64, (pages+63)/64)
	// Start the count from a paused guest, so the log and the guest's
	// own counter cover exactly the same writes.
	if err := vm.Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := vm.TakeDirty(0, pages, bitmap); err != nil {
		t.Fatal(err)
	}
	c0, err := vm.GuestContinuity()
	if err != nil {
		t.Fatal(err)
	}
	dirtied0 := vm.guestCounter(hdrDirtied)
	start := time.Now()
	if err := vm.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if err := vm.Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if err := vm.Fault(); err != nil {
		t.Fatal(err)
	}
	c1, err := vm.GuestContinuity()
	if err != nil {
		t.Fatal(err)
	}
	if !c1.Monotonic || c1.Last <= c0.Last || c1.Samples <= c0.Samples && c1.Samples < RingCapacity {
		t.Errorf("TSC ring did not advance monotonically: %+v then %+v", c0, c1)
	}
	if vm.ExitSamples() == 0 {
		t.Errorf("no exits in %v", elapsed)
	}
	if err := vm.TakeDirty(0, pages, bitmap); err != nil {
		t.Fatal(err)
	}
	dirty := 0
	for _, w := range bitmap {
		dirty += bits.OnesCount64(w)
	}
	dirtied := vm.guestCounter(hdrDirtied) - dirtied0
	t.Logf("in %v: %d exits, ring %d samples, guest wrote %d pages, dirty log reports %d pages (rate allows %.0f)",
		elapsed, vm.ExitSamples(), c1.Samples, dirtied, dirty, elapsed.Seconds()*rate/vmm.PageSize)
	if dirtied == 0 {
		t.Fatalf("the guest wrote no page")
	}
	// Every page written is in the log, plus the header and ring pages.
	workload := 0
	for p := vm.layout.dirtyFirst; p < pages; p++ {
		if bitmap[p/64]>>(p%64)&1 == 1 {
			workload++
		}
	}
	if want := min(dirtied, pages-vm.layout.dirtyFirst); uint64(workload) != want {
		t.Errorf("dirty log has %d workload pages, the guest wrote %d", workload, want)
	}
	if bitmap[0]&1 == 0 {
		t.Errorf("the header page, written every sample, is not in the dirty log")
	}
	if max := elapsed.Seconds() * rate / vmm.PageSize * 1.1; float64(dirtied) > max+1 {
		t.Errorf("guest wrote %d pages, over its rate's %.0f", dirtied, max)
	}
	// Pause completed the pending OUT: RIP is never left on it.
	regs, err := getRegs(vm.vcpuFD)
	if err != nil {
		t.Fatal(err)
	}
	if out := uint64(codePage*vmm.PageSize + 0x6a); regs.RIP == out {
		t.Errorf("paused with RIP on the OUT")
	}
}

// guestCounter reads a counter in the guest's header page.
func (vm *VM) guestCounter(off int) uint64 {
	b := make([]byte, vmm.PageSize)
	if err := vm.ReadPages(headerPage, b); err != nil {
		return 0
	}
	return uint64(b[off]) | uint64(b[off+1])<<8 | uint64(b[off+2])<<16 | uint64(b[off+3])<<24 |
		uint64(b[off+4])<<32 | uint64(b[off+5])<<40 | uint64(b[off+6])<<48 | uint64(b[off+7])<<56
}

// TestTSCOffsetReported checks that what the VM reports about TSC offset
// writes matches what KVM does with them here.
func TestTSCOffsetReported(t *testing.T) {
	b := backendForTest(t, WithMemory(2<<20))
	p := b.TSCOffsetProbe()
	if p.Samples == 0 {
		t.Fatalf("probe took no samples: %v", p)
	}
	if p.Honoured != (p.ReadBack == p.Written && b.TSCOffsetHonoured()) {
		t.Errorf("probe %v, backend says honoured=%v", p, b.TSCOffsetHonoured())
	}
	vm := bootedVM(t, b)
	if err := vm.Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	d, err := vm.ReadTimeData(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	d.GuestTSC += 1 << 40
	if _, err := vm.WriteTimeData(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	off, err := getTSCOffset(vm.vcpuFD)
	if err != nil {
		t.Fatal(err)
	}
	if vm.TSCOffsetHonoured() && off != vm.tscOffset.Load() {
		t.Errorf("VM says honoured but KVM reads offset %#x, VM thinks %#x", off, vm.tscOffset.Load())
	}
	after, err := vm.ReadTimeData(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	shifted := after.GuestTSC-d.GuestTSC < 1<<39 // within minutes of the written value
	if shifted != vm.TSCOffsetHonoured() {
		t.Errorf("guest TSC %d after writing %d: shifted=%v, but honoured=%v", after.GuestTSC, d.GuestTSC, shifted, vm.TSCOffsetHonoured())
	}
	t.Logf("offset honoured here: %v (%v)", vm.TSCOffsetHonoured(), p)
}

func TestMeasureContinuityNeedsAMigration(t *testing.T) {
	b := backendForTest(t, WithMemory(2<<20))
	vm := bootedVM(t, b)
	if _, err := vm.MeasureContinuity(); !errors.Is(err, ErrNoSamples) {
		t.Errorf("a VM never migrated in: %v", err)
	}
}

// BenchmarkTakeDirty reads the dirty log of a 256 MiB guest dirtying
// 64 MiB/s; the ReadPages case copies the same memory, the baseline for
// what a round costs beyond the log.
func BenchmarkTakeDirty(b *testing.B) {
	const memory = 256 << 20
	be := backendForTest(b, WithMemory(memory), WithDirtyRate(64<<20))
	vm := bootedVM(b, be)
	pages := vm.Spec().Pages()
	bitmap := make([]uint64, (pages+63)/64)
	b.Run("whole", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := vm.TakeDirty(0, pages, bitmap); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("chunk256", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for first := uint64(0); first < pages; first += 256 {
				if err := vm.TakeDirty(first, 256, bitmap); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("ReadPages", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(memory)
		buf := make([]byte, 1<<20)
		for b.Loop() {
			for first := uint64(0); first < pages; first += uint64(len(buf) / vmm.PageSize) {
				if err := vm.ReadPages(first, buf); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// TestTSCPairsAgree checks the fallback (realtime, host TSC) pair read in
// userspace against the kernel's, where the kernel gives one.
func TestTSCPairsAgree(t *testing.T) {
	b := backendForTest(t, WithMemory(2<<20))
	vm, err := b.NewVM(b.DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Destroy()
	kr, kt, ok, err := kernelTSCPair(vm.vmFD)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skip("KVM_GET_CLOCK gives no host TSC here; the userspace pair is the only one")
	}
	ur, ut := userTSCPair()
	dt, err := nsToTicks(ur-kr, vm.freq)
	if err != nil {
		t.Fatal(err)
	}
	diff := int64(ut - (kt + uint64(dt)))
	t.Logf("userspace pair minus kernel pair: %d ticks (%.2f µs)", diff, float64(diff)/float64(vm.freq)*1e6)
	if limit := int64(vm.freq / 10_000); diff > limit || diff < -limit { // 100 µs
		t.Errorf("the pairs disagree by %d ticks", diff)
	}
}

// BenchmarkPauseResume measures stopping a running guest at a clean
// point and starting it again, the floor under a migration's blackout.
// The exit interval is the baseline: a Pause that waited for the guest's
// own next exit would take half of it on average.
func BenchmarkPauseResume(b *testing.B) {
	for _, interval := range []time.Duration{time.Millisecond, 10 * time.Millisecond} {
		b.Run("exit-every-"+interval.String(), func(b *testing.B) {
			be := backendForTest(b, WithMemory(2<<20), WithExitInterval(interval))
			vm := bootedVM(b, be)
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				if err := vm.Pause(ctx); err != nil {
					b.Fatal(err)
				}
				if err := vm.Resume(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestThrottleSlowsTheGuest runs two guests side by side, one throttled at
// 75 %: its vCPU thread sleeps three quarters of the time. The kernel's
// schedstat of each thread tells sleeping from running or waiting for a
// CPU, which a busy machine does not blur: the throttled thread is
// runnable a quarter of the time, the other all of it. The throttled
// guest writes at most a quarter of its rate.
func TestThrottleSlowsTheGuest(t *testing.T) {
	const rate = 8 << 20
	b := backendForTest(t, WithMemory(16<<20), WithDirtyRate(rate))
	full, slow := bootedVM(t, b), bootedVM(t, b)
	if err := slow.SetThrottle(75); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	full0, slow0 := runnable(t, full), runnable(t, slow)
	slowPages0 := slow.guestCounter(hdrDirtied)
	time.Sleep(time.Second)
	fullRun, slowRun := runnable(t, full)-full0, runnable(t, slow)-slow0
	slowPages := slow.guestCounter(hdrDirtied) - slowPages0
	wall := time.Since(start)
	for _, vm := range []*VM{full, slow} {
		if err := vm.Fault(); err != nil {
			t.Fatal(err)
		}
	}
	fullShare, slowShare := float64(fullRun)/float64(wall), float64(slowRun)/float64(wall)
	t.Logf("in %v: unthrottled vCPU runnable %.2f of the time, throttled at 75 %% %.2f; it wrote %d pages (its rate %.0f)",
		wall, fullShare, slowShare, slowPages, wall.Seconds()*rate/vmm.PageSize)
	if fullShare < 0.9 {
		t.Errorf("the unthrottled vCPU was runnable %.2f of the time, want all of it", fullShare)
	}
	if slowShare < 0.2 || slowShare > 0.35 {
		t.Errorf("the vCPU throttled at 75 %% was runnable %.2f of the time, want 0.25 (0.2 to 0.35)", slowShare)
	}
	if most := 0.3 * wall.Seconds() * rate / vmm.PageSize; float64(slowPages) > most {
		t.Errorf("the throttled guest wrote %d pages, over the %.0f a quarter of its rate allows (+5 %%)", slowPages, most)
	}
	if err := slow.SetThrottle(vmm.MaxThrottle + 1); !errors.Is(err, vmm.ErrThrottleRange) {
		t.Errorf("SetThrottle(%d) = %v, want ErrThrottleRange", vmm.MaxThrottle+1, err)
	}
	// A throttled vCPU still stops at once: Pause cuts its sleep short.
	if err := slow.SetThrottle(vmm.MaxThrottle); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	pause := time.Now()
	if err := slow.Pause(t.Context()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(pause); took > 200*time.Millisecond {
		t.Errorf("pausing a guest throttled at %d %% took %v: its %v sleep was not cut short", vmm.MaxThrottle, took, vmm.ThrottleSleep(vmm.MaxThrottle))
	}
	if slow.Throttle() != vmm.MaxThrottle {
		t.Errorf("throttle %d after a pause, want %d", slow.Throttle(), vmm.MaxThrottle)
	}
}

// runnable is how long vm's vCPU thread has run or waited for a CPU, from
// the kernel's schedstat of the thread: time it did not sleep.
func runnable(t *testing.T, vm *VM) time.Duration {
	t.Helper()
	tid := vm.tid.Load()
	if tid == 0 {
		t.Fatal("the vCPU thread is not running")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/schedstat", tid))
	if err != nil {
		t.Skipf("no schedstat for the vCPU thread: %v", err)
	}
	var onCPU, waiting int64
	if _, err := fmt.Sscan(string(b), &onCPU, &waiting); err != nil {
		t.Fatalf("schedstat %q: %v", b, err)
	}
	return time.Duration(onCPU + waiting)
}
