package timedata

import "fmt"

// Kind classifies an adjustment error. Its string form is stable and is what
// `migtrace adjust -o json` reports.
type Kind string

// The kinds of adjustment error.
const (
	KindInvalidHrtime       Kind = "invalid_hrtime"
	KindInvalidGuestFreq    Kind = "invalid_guest_freq"
	KindInvalidMigrateDelta Kind = "invalid_migrate_delta"
	KindGuestUptimeOverflow Kind = "guest_uptime_overflow"
	KindTimeDeltaOverflow   Kind = "time_delta_overflow"
	KindBootHrtimeOverflow  Kind = "boot_hrtime_overflow"
	KindTSCAdjustOverflow   Kind = "tsc_adjust_overflow"
)

// Sentinels for errors.Is; each matches every *AdjustError of its kind.
var (
	ErrInvalidHrtime       = &AdjustError{Kind: KindInvalidHrtime}
	ErrInvalidGuestFreq    = &AdjustError{Kind: KindInvalidGuestFreq}
	ErrInvalidMigrateDelta = &AdjustError{Kind: KindInvalidMigrateDelta}
	ErrGuestUptimeOverflow = &AdjustError{Kind: KindGuestUptimeOverflow}
	ErrTimeDeltaOverflow   = &AdjustError{Kind: KindTimeDeltaOverflow}
	ErrBootHrtimeOverflow  = &AdjustError{Kind: KindBootHrtimeOverflow}
	ErrTSCAdjustOverflow   = &AdjustError{Kind: KindTSCAdjustOverflow}
)

// AdjustError describes why Adjust refused its input.
type AdjustError struct {
	Kind Kind
	// Op names the failing computation, e.g. "src_hrt - boot_hrtime".
	Op string
	// A and B are the operands of Op, where it has them.
	A, B int64
	// Src and Dst are the wall clocks, for KindInvalidMigrateDelta.
	Src, Dst Wallclock
}

func (e *AdjustError) Error() string {
	switch e.Kind {
	case KindInvalidHrtime:
		return fmt.Sprintf("invalid hrtime: %s is %d (must not be negative)", e.Op, e.A)
	case KindInvalidGuestFreq:
		return "invalid guest frequency: " + e.Op
	case KindInvalidMigrateDelta:
		return fmt.Sprintf("invalid migration delta: %s (source wall clock %s, destination %s)", e.Op, e.Src, e.Dst)
	case KindGuestUptimeOverflow:
		return fmt.Sprintf("guest uptime overflow: %s (hrtime %d, boot_hrtime %d)", e.Op, e.A, e.B)
	case KindTimeDeltaOverflow:
		return fmt.Sprintf("time delta overflow: %s (uptime %d ns, delta %d ns)", e.Op, e.A, e.B)
	case KindBootHrtimeOverflow:
		return fmt.Sprintf("boot_hrtime overflow: %s (%d, %d)", e.Op, e.A, e.B)
	case KindTSCAdjustOverflow:
		return fmt.Sprintf("TSC adjustment overflow: %s (delta %d s, guest %d Hz)", e.Op, e.A, e.B)
	}
	return fmt.Sprintf("time data adjustment error %s: %s", e.Kind, e.Op)
}

// Is makes every AdjustError match the sentinel of its kind.
func (e *AdjustError) Is(target error) bool {
	t, ok := target.(*AdjustError)
	return ok && t.Kind == e.Kind && t.Op == ""
}
