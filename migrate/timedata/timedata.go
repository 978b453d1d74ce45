package timedata

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// NsPerSec is the number of nanoseconds in a second.
const NsPerSec = 1_000_000_000

// Data is a VM's time data as a VMM reports it, taken from one host clock
// snapshot (bhyve's vdi_time_info_v1).
type Data struct {
	// GuestFreq is the guest TSC frequency in Hz.
	GuestFreq uint64 `json:"guest_freq"`
	// GuestTSC is the guest TSC at the snapshot. It wraps at 2^64.
	GuestTSC uint64 `json:"guest_tsc"`
	// Hrtime is the host's monotonic clock at the snapshot, in ns.
	Hrtime int64 `json:"hrtime"`
	// Wallclock is the host's wall clock at the snapshot.
	Wallclock Wallclock `json:"wallclock"`
	// BootHrtime is the host hrtime at which the guest booted, in ns. It is
	// negative when the guest has been up longer than its current host.
	BootHrtime int64 `json:"boot_hrtime"`
}

// GuestUptime returns Hrtime - BootHrtime, the guest's uptime in ns, or
// false when that does not fit an int64 or is negative.
func (d Data) GuestUptime() (int64, bool) {
	up, ok := subInt64(d.Hrtime, d.BootHrtime)
	return up, ok && up >= 0
}

// Wallclock is a wall-clock instant: whole seconds since the Unix epoch and
// nanoseconds (0 ≤ Nsec < 1e9).
type Wallclock struct {
	Sec  uint64
	Nsec uint32
}

// String formats w as "SEC.NSEC" with nine fractional digits.
func (w Wallclock) String() string {
	return fmt.Sprintf("%d.%09d", w.Sec, w.Nsec)
}

// MarshalText implements encoding.TextMarshaler ("SEC.NSEC").
func (w Wallclock) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; see ParseWallclock.
func (w *Wallclock) UnmarshalText(b []byte) error {
	v, err := ParseWallclock(string(b))
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// Valid reports whether Nsec is below one second.
func (w Wallclock) Valid() bool { return w.Nsec < NsPerSec }

// ParseWallclock parses decimal seconds with up to nine fractional digits:
// "1683850713.581965192", "5.5" or "12".
func ParseWallclock(s string) (Wallclock, error) {
	secPart, fracPart, hasDot := strings.Cut(s, ".")
	if secPart == "" || (hasDot && fracPart == "") {
		return Wallclock{}, fmt.Errorf("wall clock %q: want SEC or SEC.NSEC", s)
	}
	for _, c := range secPart + fracPart {
		if c < '0' || c > '9' {
			return Wallclock{}, fmt.Errorf("wall clock %q: want decimal digits as SEC.NSEC", s)
		}
	}
	sec, err := strconv.ParseUint(secPart, 10, 64)
	if err != nil {
		return Wallclock{}, fmt.Errorf("wall clock %q: seconds out of range", s)
	}
	if len(fracPart) > 9 {
		return Wallclock{}, fmt.Errorf("wall clock %q: more than 9 fractional digits", s)
	}
	var nsec uint32
	if fracPart != "" {
		padded := fracPart + strings.Repeat("0", 9-len(fracPart))
		v, err := strconv.ParseUint(padded, 10, 32)
		if err != nil {
			return Wallclock{}, fmt.Errorf("wall clock %q: %w", s, err)
		}
		nsec = uint32(v)
	}
	return Wallclock{Sec: sec, Nsec: nsec}, nil
}

// Sub returns w - o in nanoseconds as an unsigned magnitude and a sign. ok is
// false when the magnitude does not fit in an int64 (about 292 years).
func (w Wallclock) Sub(o Wallclock) (magnitude uint64, negative bool, ok bool) {
	a, b := w, o
	if w.before(o) {
		a, b = o, w
		negative = true
	}
	secs := a.Sec - b.Sec
	nsec := int64(a.Nsec) - int64(b.Nsec)
	if nsec < 0 {
		secs--
		nsec += NsPerSec
	}
	if secs > math.MaxInt64/NsPerSec {
		return 0, negative, false
	}
	total := secs*NsPerSec + uint64(nsec)
	if total > math.MaxInt64 {
		return 0, negative, false
	}
	return total, negative, true
}

func (w Wallclock) before(o Wallclock) bool {
	return w.Sec < o.Sec || (w.Sec == o.Sec && w.Nsec < o.Nsec)
}

// AddNs returns w advanced by ns nanoseconds (ns may be negative); ok is
// false if the result would fall before the epoch or past 2^64 s.
func (w Wallclock) AddNs(ns int64) (Wallclock, bool) {
	sec := int64(ns / NsPerSec)
	rem := int64(w.Nsec) + ns%NsPerSec
	if rem < 0 {
		rem += NsPerSec
		sec--
	} else if rem >= NsPerSec {
		rem -= NsPerSec
		sec++
	}
	var out uint64
	if sec >= 0 {
		out = w.Sec + uint64(sec)
		if out < w.Sec {
			return Wallclock{}, false
		}
	} else {
		if uint64(-sec) > w.Sec {
			return Wallclock{}, false
		}
		out = w.Sec - uint64(-sec)
	}
	return Wallclock{Sec: out, Nsec: uint32(rem)}, true
}

func subInt64(a, b int64) (int64, bool) {
	c := a - b
	if (b > 0 && c > a) || (b < 0 && c < a) {
		return 0, false
	}
	return c, true
}

func addInt64(a, b int64) (int64, bool) {
	c := a + b
	if (b > 0 && c < a) || (b < 0 && c > a) {
		return 0, false
	}
	return c, true
}
