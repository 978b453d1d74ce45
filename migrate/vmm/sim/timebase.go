package sim

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
)

// timeBase is the VM-wide guest time state. It is replaced whole (an atomic
// pointer swap) so vCPUs read it without locks.
type timeBase struct {
	freq uint64
	// offset is added to the scaled host hrtime to give the guest TSC; it
	// wraps at 2^64 like the hardware offset.
	offset     uint64
	bootHrtime int64
}

// guestTSC returns the guest TSC at host hrtime.
func (tb *timeBase) guestTSC(hrtime int64) uint64 {
	return scaleToTicks(hrtime, tb.freq) + tb.offset
}

// scaleToTicks returns ⌊ns × freq / 1e9⌋ computed in 128 bits, modulo 2^64
// (a TSC wraps); negative ns scale symmetrically.
func scaleToTicks(ns int64, freq uint64) uint64 {
	mag := uint64(ns)
	if ns < 0 {
		mag = -mag // two's complement: exact even for math.MinInt64
	}
	hi, lo := bits.Mul64(mag, freq)
	// Divide the 128-bit product in two steps so the quotient may exceed
	// 64 bits without bits.Div64 panicking; the high part is dropped.
	_, rem := bits.Div64(0, hi, timedata.NsPerSec)
	q, _ := bits.Div64(rem, lo, timedata.NsPerSec)
	if ns < 0 {
		return -q
	}
	return q
}

// now reads the host clock and the guest TSC from one snapshot.
func (vm *VM) now() (int64, timedata.Wallclock, *timeBase) {
	hrtime, wall := vm.clock.Now()
	return hrtime, wall, vm.time.Load()
}

// ReadTimeData returns the guest's time data from one host clock snapshot.
func (vm *VM) ReadTimeData(ctx context.Context) (timedata.Data, error) {
	if err := ctx.Err(); err != nil {
		return timedata.Data{}, fmt.Errorf("reading time data: %w", err)
	}
	if vm.State() == vmm.StateDestroyed {
		return timedata.Data{}, fmt.Errorf("reading time data: %w", vmm.ErrDestroyed)
	}
	hrtime, wall, tb := vm.now()
	return timedata.Data{
		GuestFreq:  tb.freq,
		GuestTSC:   tb.guestTSC(hrtime),
		Hrtime:     hrtime,
		Wallclock:  wall,
		BootHrtime: tb.bootHrtime,
	}, nil
}

// WriteTimeData installs d as bhyve does: a zero frequency, or an hrtime or
// boot_hrtime later than the VMM's own snapshot, is refused (vmm.ErrTimeData);
// the latency from d.Hrtime to that snapshot, in guest ticks, is added to
// the guest TSC; boot_hrtime is installed verbatim and the wall clock is
// ignored. The guest takes d's frequency (the simulated host scales any).
// The VM must not be running.
//
// The returned Applied carries the corrected guest TSC with the VMM's
// receipt hrtime (the instant that TSC holds for), boot_hrtime and
// frequency as given, and d's wall clock unchanged.
func (vm *VM) WriteTimeData(ctx context.Context, d timedata.Data) (vmm.TimeWrite, error) {
	const op = "writing time data"
	if err := ctx.Err(); err != nil {
		return vmm.TimeWrite{}, fmt.Errorf("%s: %w", op, err)
	}
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if err := vm.requireStopped(op); err != nil {
		return vmm.TimeWrite{}, err
	}
	// The receipt snapshot: validation and latency are measured against it.
	now, _ := vm.clock.Now()
	tw, err := vmm.PrepareTimeWrite(d, now)
	if err != nil {
		return vmm.TimeWrite{}, fmt.Errorf("%s: %w", op, err)
	}
	vm.time.Store(&timeBase{
		freq:       d.GuestFreq,
		offset:     tw.Applied.GuestTSC - scaleToTicks(now, d.GuestFreq),
		bootHrtime: d.BootHrtime,
	})
	end, _ := vm.clock.Now()
	tw.Duration = max(end-now, 0)
	return tw, nil
}

// Clock returns the host clock the VM's time data is based on.
func (vm *VM) Clock() vmm.Clock { return vm.clock }
