//go:build !linux

package sim

// readHostTSCFrequency has no portable source outside Linux; the caller
// falls back to DefaultTSCFrequency.
func readHostTSCFrequency(sysfs, procfs string) (uint64, bool) { return 0, false }
