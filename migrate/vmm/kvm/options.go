package kvm

import (
	"fmt"
	"time"
)

// BackendName is the name of this backend, as in vmm.Spec.Backend.
const BackendName = "kvm"

// Defaults for a Backend created without options.
const (
	DefaultMemoryBytes    = 64 << 20
	DefaultDirtyRate      = 16 << 20
	DefaultExitInterval   = time.Millisecond
	DefaultSampleInterval = 10 * time.Microsecond
)

// Option configures a Backend.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	memoryBytes    uint64
	dirtyRate      int64
	exitInterval   time.Duration
	sampleInterval time.Duration
}

// WithMemory sets the guest RAM size in bytes, a multiple of 2 MiB.
func WithMemory(bytes uint64) Option {
	return optionFunc(func(c *config) { c.memoryBytes = bytes })
}

// WithDirtyRate sets how many bytes per second the guest dirties (one
// 8-byte write per 4 KiB page); 0 leaves only the guest's bookkeeping.
func WithDirtyRate(bytesPerSecond int64) Option {
	return optionFunc(func(c *config) { c.dirtyRate = bytesPerSecond })
}

// WithExitInterval sets how often, in guest TSC time, the guest exits to
// the host: each exit costs tens of µs here and yields one ExitSample.
func WithExitInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.exitInterval = d })
}

// WithSampleInterval sets how often the guest stores its TSC in its ring;
// 0 stores it on every loop iteration.
func WithSampleInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.sampleInterval = d })
}

func newConfig(opts []Option) (config, error) {
	cfg := config{
		memoryBytes:    DefaultMemoryBytes,
		dirtyRate:      DefaultDirtyRate,
		exitInterval:   DefaultExitInterval,
		sampleInterval: DefaultSampleInterval,
	}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if _, err := newLayout(cfg.memoryBytes); err != nil {
		return cfg, fmt.Errorf("configuring kvm backend: %w", err)
	}
	if cfg.dirtyRate < 0 {
		return cfg, fmt.Errorf("configuring kvm backend: dirty rate %d bytes/s is negative", cfg.dirtyRate)
	}
	if cfg.exitInterval <= 0 || cfg.exitInterval > time.Second {
		return cfg, fmt.Errorf("configuring kvm backend: exit interval %v outside (0, 1s]", cfg.exitInterval)
	}
	if cfg.sampleInterval < 0 || cfg.sampleInterval > cfg.exitInterval {
		return cfg, fmt.Errorf("configuring kvm backend: sample interval %v outside [0, exit interval %v]", cfg.sampleInterval, cfg.exitInterval)
	}
	return cfg, nil
}

// OffsetProbe is what New found when it tested whether this host honours
// TSC-offset writes: it wrote Written to a vCPU's TSC offset, read back
// ReadBack, and measured the guest's RDTSC minus the host TSC.
type OffsetProbe struct {
	Written, ReadBack uint64
	// GuestMinusHost is the median guest TSC minus host TSC over the
	// probe guest's exits, in ticks (wrapping, as the offset does).
	GuestMinusHost uint64
	Samples        int
	// Honoured is true when both the read-back and the guest's view show
	// the written offset.
	Honoured bool
}

// String summarises the probe for logs.
func (p OffsetProbe) String() string {
	return fmt.Sprintf("TSC offset wrote %#x, read back %#x, guest-host %#x over %d exits: honoured %v",
		p.Written, p.ReadBack, p.GuestMinusHost, p.Samples, p.Honoured)
}
