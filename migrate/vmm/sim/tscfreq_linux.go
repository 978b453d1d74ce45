package sim

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// readHostTSCFrequency reads the TSC frequency from the sysfs and procfs
// trees rooted at sysfs and procfs (tests point them at testdata), in order
// of trust:
//  1. cpu0/tsc_freq_khz, which some kernels export;
//  2. the "@ N.NNGHz" nominal frequency in the CPU's model name (Intel),
//     which is the TSC frequency on CPUs with an invariant TSC;
//  3. "cpu MHz" when the TSC is constant and no cpufreq driver scales the
//     core clock: the kernel then reports its calibrated cpu_khz, which is
//     the TSC rate (the usual case in a VM).
//
// "tsc: Detected N MHz" in the kernel log would be best, but reading it
// needs privileges.
func readHostTSCFrequency(sysfs, procfs string) (uint64, bool) {
	cpu0 := filepath.Join(sysfs, "devices", "system", "cpu", "cpu0")
	if b, err := os.ReadFile(filepath.Join(cpu0, "tsc_freq_khz")); err == nil {
		if khz, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && khz > 0 {
			return khz * 1000, true
		}
	}
	info, err := os.ReadFile(filepath.Join(procfs, "cpuinfo"))
	if err != nil {
		return 0, false
	}
	model, mhz, flags := firstCPUInfo(info)
	if hz, ok := nominalFrequency(model); ok {
		return hz, true
	}
	_, statErr := os.Stat(filepath.Join(cpu0, "cpufreq"))
	scaled := statErr == nil
	if !scaled && hasFlag(flags, "constant_tsc") && mhz != "" {
		if hz, ok := parseScaled(mhz, 1e6); ok {
			return hz, true
		}
	}
	return 0, false
}

// firstCPUInfo returns the model name, cpu MHz and flags of the first
// processor block of /proc/cpuinfo.
func firstCPUInfo(info []byte) (model, mhz, flags string) {
	sc := bufio.NewScanner(bytes.NewReader(info))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" && model != "" {
			break // end of the first processor's block
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "model name":
			model = value
		case "cpu MHz":
			mhz = value
		case "flags":
			flags = value
		}
	}
	return model, mhz, flags
}

func hasFlag(flags, want string) bool {
	for _, f := range strings.Fields(flags) {
		if f == want {
			return true
		}
	}
	return false
}

// nominalFrequency parses the "@ 2.50GHz" suffix Intel puts in model names.
func nominalFrequency(model string) (uint64, bool) {
	_, after, ok := strings.Cut(model, "@")
	if !ok {
		return 0, false
	}
	s := strings.TrimSpace(after)
	switch {
	case strings.HasSuffix(s, "GHz"):
		return parseScaled(strings.TrimSuffix(s, "GHz"), 1e9)
	case strings.HasSuffix(s, "MHz"):
		return parseScaled(strings.TrimSuffix(s, "MHz"), 1e6)
	}
	return 0, false
}

// parseScaled parses a decimal such as "2.50" or "2445.402" and multiplies
// it by unit, exactly (no float rounding), dropping sub-Hz digits.
func parseScaled(s string, unit uint64) (uint64, bool) {
	whole, frac, _ := strings.Cut(strings.TrimSpace(s), ".")
	if whole == "" {
		return 0, false
	}
	w, err := strconv.ParseUint(whole, 10, 32)
	if err != nil {
		return 0, false
	}
	hz := w * unit
	scale := unit
	for _, c := range frac {
		if c < '0' || c > '9' {
			return 0, false
		}
		scale /= 10
		if scale == 0 {
			break
		}
		hz += uint64(c-'0') * scale
	}
	return hz, hz > 0
}
