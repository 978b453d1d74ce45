package vmm

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
)

// ErrCapacity: this host cannot hold a VM of the spec (more memory or
// vCPUs than it allows, a backend it does not run). The wrapping error
// names every excess.
var ErrCapacity = errors.New("beyond this host's capacity")

// Limits bound the VMs a host accepts. A destination checks the source's
// spec against them in Sync, before it allocates anything for the VM.
type Limits struct {
	// Backend is the one backend the host runs; "" accepts any.
	Backend string
	// MaxMemoryBytes bounds guest memory; 0 means DefaultMaxGuestMemory,
	// read when WithDefaults is called.
	MaxMemoryBytes uint64
	// MaxVCPUs bounds the vCPUs; 0 means DefaultMaxVCPUs.
	MaxVCPUs int
}

// DefaultMaxVCPUs is the host's CPU count: KVM's recommended ceiling for
// one guest (KVM_CAP_NR_VCPUS), past which vCPUs only queue for the same
// cores.
func DefaultMaxVCPUs() int { return runtime.NumCPU() }

// memoryHeadroom is the least a host keeps back from guests: the
// migration's own buffers, per-page hashes (1/512 of guest memory) and the
// rest of the process.
const memoryHeadroom = 256 << 20

// DefaultMaxGuestMemory is what this host can give a guest now (see
// HostMemory) less headroom: a quarter of it, at least 256 MiB. It is 0 on
// a host with less than that to spare.
func DefaultMaxGuestMemory() uint64 {
	avail, _ := HostMemory()
	keep := max(avail/4, memoryHeadroom)
	if avail <= keep {
		return 0
	}
	return (avail - keep) / PageSize * PageSize
}

// WithDefaults fills in the zero limits from the host, now.
func (l Limits) WithDefaults() Limits {
	if l.MaxMemoryBytes == 0 {
		l.MaxMemoryBytes = DefaultMaxGuestMemory()
	}
	if l.MaxVCPUs == 0 {
		l.MaxVCPUs = DefaultMaxVCPUs()
	}
	return l
}

// Check returns nil if a VM of spec fits the limits, or an error wrapping
// ErrCapacity that names every limit spec exceeds. Zero limits are checked
// as given: call WithDefaults first for the host's.
func (l Limits) Check(spec Spec) error {
	var problems []string
	if l.Backend != "" && spec.Backend != l.Backend {
		problems = append(problems, fmt.Sprintf("backend %q: this host runs only %q", spec.Backend, l.Backend))
	}
	if spec.MemoryBytes > l.MaxMemoryBytes {
		problems = append(problems, fmt.Sprintf("memory %s is more than the %s this host allows",
			FormatBytes(spec.MemoryBytes), FormatBytes(l.MaxMemoryBytes)))
	}
	if spec.VCPUs > l.MaxVCPUs {
		problems = append(problems, fmt.Sprintf("%d vcpus is more than the %d this host allows", spec.VCPUs, l.MaxVCPUs))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrCapacity, strings.Join(problems, "; "))
}

// FormatBytes writes n in the largest IEC unit that keeps it readable:
// "1 TiB", "1.5 GiB", "4096 B"; exact sizes below 1 KiB stay in bytes.
func FormatBytes(n uint64) string {
	units := []struct {
		name string
		size uint64
	}{{"EiB", 1 << 60}, {"PiB", 1 << 50}, {"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if n >= u.size {
			v := strconv.FormatFloat(float64(n)/float64(u.size), 'f', 2, 64)
			v = strings.TrimSuffix(strings.TrimRight(v, "0"), ".")
			return v + " " + u.name
		}
	}
	return strconv.FormatUint(n, 10) + " B"
}

// FallbackHostMemory is HostMemory where the host's own figure cannot be
// read: small enough that a laptop survives a guest of that size, large
// enough for the demos.
const FallbackHostMemory = 4 << 30
