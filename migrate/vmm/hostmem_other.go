//go:build !linux

package vmm

// HostMemory is FallbackHostMemory on hosts where migtrace does not read
// the kernel's figure: a guess, which --max-guest-memory overrides.
func HostMemory() (bytes uint64, how string) {
	return FallbackHostMemory, "a fixed guess on this OS"
}
