package sim

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// The layout of a page written by the workload: a 64-byte header, then a
// body of pseudo-random words whose checksum the header carries.
const (
	pageMagic      = 0x4d54_5041_4745_3031 // "MTPAGE01"
	hdrMagic       = 0
	hdrPage        = 8
	hdrSeq         = 16
	hdrVCPU        = 24
	hdrChecksum    = 32
	pageHeaderSize = 64
)

// vcpuTick is how often an idle vCPU wakes to read its TSC and to write
// the pages its dirty rate has made due.
const vcpuTick = time.Millisecond

// maxBacklog bounds the pages a vCPU writes to catch up after it was
// starved of CPU, so a stall does not turn into a burst.
const maxBacklog = 100 * time.Millisecond

// workload is a vCPU's guest-visible progress. It travels with the VM as
// the vCPU's device state, so a migrated guest carries on where it was.
type workload struct {
	id uint32
	// rate is this vCPU's share of the dirty rate, bytes/s.
	rate uint64
	// seq is the write sequence number of the last page written.
	seq uint64
	// rng is the splitmix64 state that picks pages and seeds bodies.
	rng uint64
	// pages and samples count page writes and TSC samples.
	pages   uint64
	samples uint64
}

func newWorkload(id uint32, rate uint64) workload {
	return workload{id: id, rate: rate, rng: 0x9e37_79b9_7f4a_7c15 * uint64(id+1)}
}

// vcpu is one guest CPU; mu guards st against readers such as Workload
// while the vCPU runs.
type vcpu struct {
	id uint32
	mu sync.Mutex
	st workload
}

// splitmix64 advances *state and returns the next pseudo-random word.
func splitmix64(state *uint64) uint64 {
	*state += 0x9e37_79b9_7f4a_7c15
	z := *state
	z = (z ^ (z >> 30)) * 0xbf58_476d_1ce4_e5b9
	z = (z ^ (z >> 27)) * 0x94d0_49bb_1331_11eb
	return z ^ (z >> 31)
}

const (
	fnvOffset = 0xcbf2_9ce4_8422_2325
	fnvPrime  = 0x100_0000_01b3
)

// bodyChecksum is FNV-1a over the body's 64-bit little-endian words.
func bodyChecksum(body []byte) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i+8 <= len(body); i += 8 {
		h = (h ^ binary.LittleEndian.Uint64(body[i:])) * fnvPrime
	}
	return h
}

// runVCPU is a vCPU's main loop: every tick it samples its TSC, vCPU 0
// services the timer, and it writes the pages its rate has made due in the
// time it has run, checking for a stop between every two pages. Throttled
// (SetThrottle), it sleeps after each vmm.ThrottleSlice it runs; the
// sleeps do not count as run time, so its guest does that much less.
func (vm *VM) runVCPU(c *vcpu, stop <-chan struct{}) {
	defer vm.wg.Done()
	c.mu.Lock()
	rate := c.st.rate
	c.mu.Unlock()
	// ran is the time run since start; sliceRan what ran was at the last
	// throttle sleep.
	var ran, sliceRan time.Duration
	last := time.Now()
	var written uint64 // pages written since start
	backlog := pagesDue(rate, maxBacklog)
	ticker := time.NewTicker(vcpuTick)
	defer ticker.Stop()
	nap := time.NewTimer(0)
	<-nap.C
	for {
		now := time.Now()
		ran += now.Sub(last)
		last = now
		vm.sampleTSC(c)
		if c.id == 0 {
			vm.serviceTimer(c)
		}
		if rate > 0 {
			due := pagesDue(rate, ran)
			if due > written+backlog {
				written = due - backlog
			}
			for ; written < due; written++ {
				select {
				case <-stop:
					return
				default:
				}
				vm.writeWorkloadPage(c)
			}
		}
		if p := int(vm.throttle.Load()); p == 0 {
			sliceRan = ran
		} else if slice := ran - sliceRan; slice >= vmm.ThrottleSlice {
			// In proportion to what the slice actually ran, which the
			// ticks stretch past vmm.ThrottleSlice.
			nap.Reset(vmm.ThrottleSleep(p) * slice / vmm.ThrottleSlice)
			select {
			case <-stop:
				nap.Stop()
				return
			case <-nap.C:
			}
			last, sliceRan = time.Now(), ran
		}
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
	}
}

// pagesDue is ⌊rate × elapsed / PageSize⌋ in 128-bit arithmetic.
func pagesDue(rate uint64, elapsed time.Duration) uint64 {
	if elapsed <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(rate, uint64(elapsed))
	const div = uint64(time.Second) * vmm.PageSize
	if hi >= div {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, div)
	return q
}

// writeWorkloadPage writes one stamped page chosen at random among the
// pages after the TSC ring.
func (vm *VM) writeWorkloadPage(c *vcpu) {
	m := vm.mem
	c.mu.Lock()
	defer c.mu.Unlock()
	span := m.pages - RingPages
	p := RingPages + splitmix64(&c.st.rng)%span
	c.st.seq++
	c.st.pages++
	// xorshift64 fills the body: a shift-only generator keeps the write
	// cheap enough for GB/s dirty rates. Its state must not be zero.
	x := splitmix64(&c.st.rng) | 1

	page := m.beginGuestWrite(p)
	binary.LittleEndian.PutUint64(page[hdrMagic:], pageMagic)
	binary.LittleEndian.PutUint64(page[hdrPage:], p)
	binary.LittleEndian.PutUint64(page[hdrSeq:], c.st.seq)
	binary.LittleEndian.PutUint64(page[hdrVCPU:], uint64(c.id))
	clear(page[hdrChecksum+8 : pageHeaderSize])
	body := page[pageHeaderSize:]
	h := uint64(fnvOffset)
	for i := 0; i+8 <= len(body); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(body[i:], x)
		h = (h ^ x) * fnvPrime
	}
	binary.LittleEndian.PutUint64(page[hdrChecksum:], h)
	m.endGuestWrite(p)
}

// sampleTSC reads the guest TSC and appends it to the ring in guest memory.
func (vm *VM) sampleTSC(c *vcpu) {
	vm.ringMu.Lock()
	defer vm.ringMu.Unlock()
	hrtime, _ := vm.clock.Now()
	appendSample(vm.mem, vm.time.Load().guestTSC(hrtime))
	c.mu.Lock()
	c.st.samples++
	c.mu.Unlock()
}

// serviceTimer fires the timer when its deadline has passed: the guest
// prints a progress line and re-arms it one period later.
func (vm *VM) serviceTimer(c *vcpu) {
	hrtime, _ := vm.clock.Now()
	tb := vm.time.Load()
	vm.devMu.Lock()
	defer vm.devMu.Unlock()
	t := &vm.timer
	if !t.armed || hrtime < t.deadline {
		return
	}
	t.fired++
	t.deadline += t.period
	if t.deadline <= hrtime {
		// Missed periods (a paused or starved guest) are skipped, as a
		// one-shot guest timer re-armed from "now" would.
		t.deadline = hrtime + t.period
	}
	c.mu.Lock()
	pages := c.st.pages
	c.mu.Unlock()
	uptime := hrtime - tb.bootHrtime
	vm.serial.write(fmt.Appendf(nil, "uptime %d.%03ds tick %d tsc %d pages %d\n",
		uptime/1e9, uptime%1e9/1e6, t.fired, tb.guestTSC(hrtime), pages))
}

// WorkloadStats summarises what the guest has done.
type WorkloadStats struct {
	// PagesWritten counts workload page writes over all vCPUs.
	PagesWritten uint64
	// TSCSamples counts TSC readings appended to the ring.
	TSCSamples uint64
	// TimerFired counts timer expiries.
	TimerFired uint64
}

// Workload returns the guest's progress counters; they travel with the VM.
func (vm *VM) Workload() WorkloadStats {
	var s WorkloadStats
	for _, c := range vm.vcpus {
		c.mu.Lock()
		s.PagesWritten += c.st.pages
		s.TSCSamples += c.st.samples
		c.mu.Unlock()
	}
	vm.devMu.Lock()
	s.TimerFired = vm.timer.fired
	vm.devMu.Unlock()
	return s
}
