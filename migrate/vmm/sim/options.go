package sim

import (
	"fmt"
	"math"
	"time"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
)

// BackendName is the name of this backend, as in vmm.Spec.Backend.
const BackendName = "sim"

// Defaults for a Backend created without options.
const (
	DefaultMemoryBytes  = 256 << 20
	DefaultVCPUs        = 1
	DefaultDirtyRate    = 16 << 20
	DefaultTSCFrequency = 2_500_000_000
	// DefaultTimerPeriod is how often the guest's timer fires and prints a
	// progress line on its serial console.
	DefaultTimerPeriod = 100_000_000
)

// Option configures a Backend.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	memoryBytes uint64
	vcpus       int
	dirtyRate   int64
	tscFreq     uint64
	timerPeriod int64
	clock       vmm.Clock
	wallOffset  time.Duration
}

// WithMemory sets the guest RAM size in bytes; it must be a multiple of
// vmm.PageSize and leave room for at least one workload page after the
// pages reserved for the TSC ring.
func WithMemory(bytes uint64) Option {
	return optionFunc(func(c *config) { c.memoryBytes = bytes })
}

// WithVCPUs sets the number of guest vCPUs (at least 1).
func WithVCPUs(n int) Option {
	return optionFunc(func(c *config) { c.vcpus = n })
}

// WithDirtyRate sets how many bytes per second the guest workload writes,
// shared between its vCPUs; 0 makes an idle guest that only reads its TSC.
func WithDirtyRate(bytesPerSecond int64) Option {
	return optionFunc(func(c *config) { c.dirtyRate = bytesPerSecond })
}

// WithTSCFrequency sets the guest TSC frequency in Hz of a freshly booted
// guest; 0 means the host's (see HostTSCFrequency). A migrated guest keeps
// the frequency its time data carries.
func WithTSCFrequency(hz uint64) Option {
	return optionFunc(func(c *config) { c.tscFreq = hz })
}

// WithTimerPeriod sets the period, in ns, of the guest's timer.
func WithTimerPeriod(ns int64) Option {
	return optionFunc(func(c *config) { c.timerPeriod = ns })
}

// WithClock sets the host clock VMs read their time data from; tests inject
// clocks that skew or step.
func WithClock(c vmm.Clock) Option {
	return optionFunc(func(cfg *config) { cfg.clock = c })
}

// WithWallclockOffset makes the simulated host's wall clock read d ahead of
// the clock it is built on (behind for a negative d) while its hrtime is
// unchanged, as on a host whose NTP is off. It wraps the backend's clock,
// so the guest's time data and the migration's clock-offset estimate,
// which both read that clock, see the same offset.
func WithWallclockOffset(d time.Duration) Option {
	return optionFunc(func(c *config) { c.wallOffset = d })
}

// Backend creates simulated VMs. It is safe for concurrent use.
type Backend struct {
	cfg config
}

// New returns a Backend. Without options it makes 256 MiB, one-vCPU guests
// dirtying 16 MiB/s, with the host's TSC frequency (2.5 GHz when it cannot
// be read) and the host's real clocks.
func New(opts ...Option) (*Backend, error) {
	cfg := config{
		memoryBytes: DefaultMemoryBytes,
		vcpus:       DefaultVCPUs,
		dirtyRate:   DefaultDirtyRate,
		timerPeriod: DefaultTimerPeriod,
	}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.tscFreq == 0 {
		cfg.tscFreq = HostTSCFrequency()
	}
	if cfg.clock == nil {
		cfg.clock = vmm.SystemClock()
	}
	if cfg.wallOffset != 0 {
		// Refuse an offset that puts the wall clock before the epoch now
		// rather than at some later read.
		_, wall := cfg.clock.Now()
		if _, ok := wall.AddNs(int64(cfg.wallOffset)); !ok {
			return nil, fmt.Errorf("configuring sim backend: wall-clock offset %v takes the wall clock %s out of range", cfg.wallOffset, wall)
		}
		cfg.clock = wallOffsetClock{base: cfg.clock, offsetNs: int64(cfg.wallOffset)}
	}
	if err := checkShape(cfg.memoryBytes, cfg.vcpus); err != nil {
		return nil, fmt.Errorf("configuring sim backend: %w", err)
	}
	// Refused here as well as at each VM's allocation, so that a backend
	// is never configured for VMs it cannot make.
	if err := checkFits(cfg.memoryBytes); err != nil {
		return nil, fmt.Errorf("configuring sim backend: %w", err)
	}
	if cfg.dirtyRate < 0 {
		return nil, fmt.Errorf("configuring sim backend: dirty rate %d bytes/s is negative", cfg.dirtyRate)
	}
	if cfg.timerPeriod <= 0 {
		return nil, fmt.Errorf("configuring sim backend: timer period %d ns must be positive", cfg.timerPeriod)
	}
	return &Backend{cfg: cfg}, nil
}

// checkShape validates a guest's memory size and vCPU count.
func checkShape(memoryBytes uint64, vcpus int) error {
	if memoryBytes%vmm.PageSize != 0 {
		return fmt.Errorf("memory %d bytes is not a multiple of the %d-byte page", memoryBytes, vmm.PageSize)
	}
	if memoryBytes/vmm.PageSize <= RingPages {
		return fmt.Errorf("memory %d bytes leaves no page for the workload after the %d-page TSC ring",
			memoryBytes, RingPages)
	}
	if uint64(int(memoryBytes)) != memoryBytes {
		return fmt.Errorf("memory %d bytes does not fit this host's address space", memoryBytes)
	}
	if vcpus < 1 {
		return fmt.Errorf("vcpus %d: need at least 1", vcpus)
	}
	if vcpus > maxVCPUs {
		return fmt.Errorf("vcpus %d: at most %d", vcpus, maxVCPUs)
	}
	return nil
}

// maxVCPUs bounds the goroutines one VM starts.
const maxVCPUs = 256

// Name returns "sim".
func (b *Backend) Name() string { return BackendName }

// Clock returns the host clock the backend's VMs use.
func (b *Backend) Clock() vmm.Clock { return b.cfg.clock }

// DefaultSpec returns the spec of a VM built from the backend's options.
func (b *Backend) DefaultSpec() vmm.Spec {
	return vmm.Spec{
		Backend:     BackendName,
		MemoryBytes: b.cfg.memoryBytes,
		VCPUs:       b.cfg.vcpus,
		Devices:     deviceSpecs(b.cfg.vcpus),
	}
}

// New creates a VM in vmm.StateCreated. Zero fields of spec take the
// backend's defaults; a spec naming devices must name exactly this
// backend's devices for its vCPU count (vmm.ErrIncompatible otherwise).
func (b *Backend) New(spec vmm.Spec) (vmm.VM, error) {
	return b.NewVM(spec)
}

// NewVM is New returning the concrete type, for the helpers only sim VMs
// have (SerialOutput, Workload).
func (b *Backend) NewVM(spec vmm.Spec) (*VM, error) {
	if spec.Backend == "" {
		spec.Backend = BackendName
	}
	if spec.MemoryBytes == 0 {
		spec.MemoryBytes = b.cfg.memoryBytes
	}
	if spec.VCPUs == 0 {
		spec.VCPUs = b.cfg.vcpus
	}
	if spec.Backend != BackendName {
		return nil, fmt.Errorf("creating sim vm: %w: backend %q, this is %q", vmm.ErrIncompatible, spec.Backend, BackendName)
	}
	if err := checkShape(spec.MemoryBytes, spec.VCPUs); err != nil {
		return nil, fmt.Errorf("creating sim vm: %w: %w", vmm.ErrIncompatible, err)
	}
	own := deviceSpecs(spec.VCPUs)
	if spec.Devices != nil {
		mine := vmm.Spec{Backend: BackendName, MemoryBytes: spec.MemoryBytes, VCPUs: spec.VCPUs, Devices: own}
		if err := spec.Compatible(mine); err != nil {
			return nil, fmt.Errorf("creating sim vm: %w", err)
		}
	}
	spec.Devices = own
	vm, err := newVM(b.cfg, spec)
	if err != nil {
		return nil, fmt.Errorf("creating sim vm: %w", err)
	}
	return vm, nil
}

// wallOffsetClock is base with its wall clock shifted by offsetNs.
type wallOffsetClock struct {
	base     vmm.Clock
	offsetNs int64
}

// Now shifts base's wall reading; hrtime passes through. A shift out of
// range (possible only if base's wall clock stepped that far since New
// checked it) saturates at the epoch or the largest wall clock.
func (c wallOffsetClock) Now() (int64, timedata.Wallclock) {
	hrtime, wall := c.base.Now()
	shifted, ok := wall.AddNs(c.offsetNs)
	switch {
	case ok:
		return hrtime, shifted
	case c.offsetNs < 0:
		return hrtime, timedata.Wallclock{}
	default:
		return hrtime, timedata.Wallclock{Sec: math.MaxUint64, Nsec: timedata.NsPerSec - 1}
	}
}
