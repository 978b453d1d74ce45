package sim

// HostTSCFrequency returns the host's TSC frequency in Hz when the host
// publishes it, else DefaultTSCFrequency (2.5 GHz).
func HostTSCFrequency() uint64 {
	if hz, ok := readHostTSCFrequency("/sys", "/proc"); ok {
		return hz
	}
	return DefaultTSCFrequency
}
