package vmm

import (
	"fmt"

	"github.com/migtrace/migtrace/migrate/timedata"
)

// PrepareTimeWrite applies bhyve's rules to time data d that a VMM receives
// at its own host hrtime now (propolis.md §2.5): a zero frequency, or an
// hrtime or boot_hrtime later than now, is refused with ErrTimeData; the
// latency from d.Hrtime to now, in guest ticks, is added to the guest TSC.
// It returns the write to report: Applied is d with the corrected guest
// TSC, which holds at Hrtime = now; boot_hrtime is kept verbatim and the
// wall clock is left as given (backends ignore it). The backend installs
// Applied and fills in Duration. Every backend shares these rules.
func PrepareTimeWrite(d timedata.Data, now int64) (TimeWrite, error) {
	if d.GuestFreq == 0 {
		return TimeWrite{}, fmt.Errorf("%w: guest frequency is 0", ErrTimeData)
	}
	if d.Hrtime > now {
		return TimeWrite{}, fmt.Errorf("%w: hrtime %d is in the future (VMM hrtime %d)", ErrTimeData, d.Hrtime, now)
	}
	if d.BootHrtime > now {
		return TimeWrite{}, fmt.Errorf("%w: boot_hrtime %d is in the future (VMM hrtime %d)", ErrTimeData, d.BootHrtime, now)
	}
	latency := now - d.Hrtime
	if latency < 0 { // d.Hrtime far below zero: now − d.Hrtime overflowed
		return TimeWrite{}, fmt.Errorf("%w: hrtime %d is too far in the past (VMM hrtime %d)", ErrTimeData, d.Hrtime, now)
	}
	correction, err := timedata.TSCDelta(uint64(latency)/timedata.NsPerSec, uint32(uint64(latency)%timedata.NsPerSec), d.GuestFreq)
	if err != nil {
		return TimeWrite{}, fmt.Errorf("%w: latency %d ns: %w", ErrTimeData, latency, err)
	}
	applied := d
	applied.GuestTSC = d.GuestTSC + correction // wraps like the TSC
	applied.Hrtime = now
	return TimeWrite{Applied: applied, Latency: latency, TSCCorrection: correction}, nil
}
