package timeline

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Dur prints ns with three significant digits in the largest unit that
// keeps the figure at least 1: "2.14 ms", "49.9 µs", "9.40 s", "812 ns".
func Dur(ns int64) string {
	if ns < 0 {
		if ns == math.MinInt64 {
			return "-" + Dur(math.MaxInt64)
		}
		return "-" + Dur(-ns)
	}
	units := []struct {
		name string
		ns   float64
	}{{"s", 1e9}, {"ms", 1e6}, {"µs", 1e3}}
	for _, u := range units {
		if float64(ns) < u.ns {
			continue
		}
		return sig3(float64(ns)/u.ns) + " " + u.name
	}
	return strconv.FormatInt(ns, 10) + " ns"
}

// sig3 prints v (≥ 1) with three significant digits; a value that rounds
// to 1000 stays "1000" rather than switching units mid-figure.
func sig3(v float64) string {
	switch {
	case v >= 99.95:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 9.995:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// Count prints n with thousands separators: "4,096".
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// TSCDelta prints a TSC adjustment with its sign: the tables' deltas are
// modulo 2^64, so one past 2^63 is a step backwards.
func TSCDelta(d uint64) string {
	if d > math.MaxInt64 {
		return "-" + Count(int64(-d))
	}
	return "+" + Count(int64(d))
}

var errWallclock = errors.New(`not a "SEC.NSEC" wall clock`)

// parseWallclock reads "SEC[.NSEC]" (up to nine fractional digits) as
// Unix ns.
func parseWallclock(s string) (int64, error) {
	sec, frac, _ := strings.Cut(s, ".")
	if sec == "" || len(frac) > 9 || strings.HasPrefix(sec, "+") || strings.HasPrefix(sec, "-") {
		return 0, fmt.Errorf("%w: %q", errWallclock, s)
	}
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q", errWallclock, s)
	}
	var ns int64
	if frac != "" {
		if strings.ContainsAny(frac, "+-") {
			return 0, fmt.Errorf("%w: %q", errWallclock, s)
		}
		ns, err = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q", errWallclock, s)
		}
	}
	if secs > (math.MaxInt64-ns)/1e9 {
		return 0, fmt.Errorf("%w: %q is out of range", errWallclock, s)
	}
	return secs*1e9 + ns, nil
}
