package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
)

// sizeFlag is a byte count with an optional IEC suffix: 4096, 64KiB,
// 256MiB, 1GiB, 1TiB (and the bare letters K, M, G, T as IEC too).
type sizeFlag struct{ bytes uint64 }

func (f *sizeFlag) String() string { return formatIEC(f.bytes) }
func (f *sizeFlag) Type() string   { return "SIZE" }
func (f *sizeFlag) Set(s string) error {
	v, err := parseIEC(s)
	if err != nil {
		return err
	}
	f.bytes = v
	return nil
}

// rateFlag is bytes per second: a size, optionally followed by "/s".
type rateFlag struct{ bytesPerSec uint64 }

func (f *rateFlag) String() string { return formatIEC(f.bytesPerSec) + "/s" }
func (f *rateFlag) Type() string   { return "RATE" }
func (f *rateFlag) Set(s string) error {
	v, err := parseIEC(strings.TrimSuffix(s, "/s"))
	if err != nil {
		return err
	}
	// Rates are int64 further on; a larger one would wrap negative.
	if v > math.MaxInt64 {
		return fmt.Errorf("too large: at most %d bytes per second", int64(math.MaxInt64))
	}
	f.bytesPerSec = v
	return nil
}

// positiveDurationFlag is a duration above zero: a zero or negative
// timeout or target is a mistake, not a request for the default.
type positiveDurationFlag struct{ d time.Duration }

func (f *positiveDurationFlag) String() string { return f.d.String() }
func (f *positiveDurationFlag) Type() string   { return "duration" }
func (f *positiveDurationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 30ms or 5s")
	}
	if d <= 0 {
		return errors.New("must be more than 0")
	}
	f.d = d
	return nil
}

// positiveIntFlag is a count of at least 1.
type positiveIntFlag struct{ n int }

func (f *positiveIntFlag) String() string { return strconv.Itoa(f.n) }
func (f *positiveIntFlag) Type() string   { return "int" }
func (f *positiveIntFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("want a whole number")
	}
	if n < 1 {
		return errors.New("must be at least 1")
	}
	f.n = n
	return nil
}

// percentFlag is a throttle percentage, 1 to vmm.MaxThrottle.
type percentFlag struct{ n int }

func (f *percentFlag) String() string { return strconv.Itoa(f.n) }
func (f *percentFlag) Type() string   { return "percent" }
func (f *percentFlag) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "%"))
	if err != nil {
		return errors.New("want a whole number of percent")
	}
	if n < 1 || n > vmm.MaxThrottle {
		return fmt.Errorf("want 1 to %d", vmm.MaxThrottle)
	}
	f.n = n
	return nil
}

var iecUnits = []struct {
	suffix string
	mult   uint64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10},
	{"B", 1},
}

func parseIEC(s string) (uint64, error) {
	num, mult := strings.TrimSpace(s), uint64(1)
	for _, u := range iecUnits {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	if num == "" {
		return 0, fmt.Errorf("%q: want a number with an optional IEC suffix (KiB, MiB, GiB, TiB)", s)
	}
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want a whole number with an optional IEC suffix (KiB, MiB, GiB, TiB)", s)
	}
	if v > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q: too large", s)
	}
	return v * mult, nil
}

func formatIEC(v uint64) string {
	for _, u := range iecUnits[:4] {
		if v >= u.mult && v%u.mult == 0 {
			return strconv.FormatUint(v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(v, 10)
}
