package migrate

import (
	"time"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/schema"
)

// PhaseRecord is one phase as one side ran it. BeginNs and EndNs are that
// host's monotonic clock, so EndNs−BeginNs is what DTrace would measure.
type PhaseRecord struct {
	Phase     schema.Phase `json:"phase"`
	BeginNs   int64        `json:"begin_ns"`
	EndNs     int64        `json:"end_ns"`
	Bytes     uint64       `json:"bytes,omitempty"`
	Pages     uint64       `json:"pages,omitempty"`
	ZeroPages uint64       `json:"zero_pages,omitempty"`
	Rounds    int          `json:"rounds,omitempty"`
	Failed    bool         `json:"failed,omitempty"`
}

// Duration is EndNs − BeginNs.
func (p PhaseRecord) Duration() time.Duration { return time.Duration(p.EndNs - p.BeginNs) }

// StageRecord is one time-data stage as the destination recorded it.
type StageRecord struct {
	Stage schema.Stage  `json:"stage"`
	Data  timedata.Data `json:"data"`
	// DurationNs: Migration, the wall-clock delta; userspace, receipt to
	// the VMM write; kernel, the VMM write itself.
	DurationNs int64 `json:"duration_ns"`
	// TSCDelta and BootHrtimeDelta are this stage minus the previous one.
	TSCDelta        uint64 `json:"guest_tsc_delta"`
	BootHrtimeDelta int64  `json:"boot_hrtime_delta"`
	// VMMLatencyNs is the latency the VMM corrected for (kernel stage).
	VMMLatencyNs int64 `json:"vmm_latency_ns,omitempty"`
}

// Result is what one side of a migration saw.
type Result struct {
	ID     ID            `json:"id"`
	Role   schema.Role   `json:"-"`
	Peer   string        `json:"peer,omitempty"`
	Start  time.Time     `json:"start"`
	End    time.Time     `json:"end"`
	Phases []PhaseRecord `json:"phases"`
	// Err is the failure, nil on success.
	Err error `json:"-"`

	// Rounds is the number of pre-copy rounds before the pause.
	Rounds int `json:"rounds"`
	// BytesSent and BytesReceived count the migration stream.
	BytesSent     uint64 `json:"bytes_sent"`
	BytesReceived uint64 `json:"bytes_received"`

	// Source only: pause to handoff.
	Downtime time.Duration `json:"downtime_ns,omitempty"`

	// Destination only.
	SourcePhases []PhaseRecord        `json:"source_phases,omitempty"`
	Stages       []StageRecord        `json:"stages,omitempty"`
	Adjustments  timedata.Adjustments `json:"adjustments"`
	// Clock is the wall-clock offset estimate; its OffsetNs is the
	// source's clock minus this destination's (see wire.ClockEstimate).
	Clock         wire.ClockEstimate `json:"clock"`
	SkewCorrected bool               `json:"skew_corrected,omitempty"`
	Blackout      time.Duration      `json:"blackout_ns,omitempty"`
	BlackoutError time.Duration      `json:"blackout_error_ns,omitempty"`
	Continuity    vmm.Continuity     `json:"continuity"`
	// TSCContinuity is the backend's timing of the resumed guest's TSC
	// against the wall clock, where it can (kvm); nil otherwise.
	TSCContinuity *vmm.TSCContinuity `json:"tsc_continuity,omitempty"`
	Verified      bool               `json:"verified"`
}

// Phase returns the record of phase p, if this side ran it.
func (r *Result) Phase(p schema.Phase) (PhaseRecord, bool) {
	for _, rec := range r.Phases {
		if rec.Phase == p {
			return rec, true
		}
	}
	return PhaseRecord{}, false
}
