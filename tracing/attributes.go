package tracing

import (
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Uint64 encodes an unsigned 64-bit value as a base-10 string attribute.
// OTel attributes have no uint64 and guest TSC values pass 2^63, so a
// string is the lossless choice; ParseUint64 reads it back.
func Uint64(key string, v uint64) attribute.KeyValue {
	return attribute.String(key, strconv.FormatUint(v, 10))
}

// GuestTSC is Uint64 under the name the protocol code reads best with:
// guest TSC values and deltas (schema.AttrGuestTSC, schema.AttrGuestTSCDelta).
func GuestTSC(key string, v uint64) attribute.KeyValue { return Uint64(key, v) }

// ParseUint64 decodes a value written by Uint64; s is the attribute's
// string value.
func ParseUint64(s string) (uint64, error) {
	return strconv.ParseUint(s, 10, 64)
}

// Wallclock encodes a wall-clock instant as the string "SEC.NSEC" (nine
// fractional digits): seconds since the epoch are a uint64, and the string
// keeps nanosecond precision that a float would lose.
// timedata.ParseWallclock reads it back.
func Wallclock(key string, w timedata.Wallclock) attribute.KeyValue {
	return attribute.String(key, w.String())
}

// StageEventAttributes returns the attributes of one
// schema.EventTimeDataStage event: the stage's time data d, how long the
// stage took (durationNs; for StageMigration the wall-clock migration
// delta), the guest TSC and boot_hrtime changes from the previous stage
// (zero for StageMigration), the adjustment summary, and for StageKernel
// only, the VMM's write latency.
func StageEventAttributes(stage schema.Stage, d timedata.Data, durationNs int64, tscDelta uint64,
	bootDelta int64, adj timedata.Adjustments, vmmLatencyNs int64) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 13)
	attrs = append(attrs,
		attribute.String(schema.AttrTimeStage, stage.String()),
		Uint64(schema.AttrGuestFreq, d.GuestFreq),
		Uint64(schema.AttrGuestTSC, d.GuestTSC),
		attribute.Int64(schema.AttrBootHrtime, d.BootHrtime),
		attribute.Int64(schema.AttrHrtime, d.Hrtime),
		Wallclock(schema.AttrWallclock, d.Wallclock),
		attribute.Int64(schema.AttrStageDurationNs, durationNs),
		Uint64(schema.AttrGuestTSCDelta, tscDelta),
		attribute.Int64(schema.AttrBootHrtimeDelta, bootDelta),
		attribute.Int64(schema.AttrGuestUptimeNs, adj.GuestUptime),
		attribute.Int64(schema.AttrMigrateDeltaNs, adj.MigrateDelta),
		attribute.Bool(schema.AttrMigrateDeltaNegative, adj.MigrateDeltaNegative),
	)
	if stage == schema.StageKernel {
		attrs = append(attrs, attribute.Int64(schema.AttrVMMLatencyNs, vmmLatencyNs))
	}
	return attrs
}

// ClockOffsetAttributes returns the attributes of a schema.EventClockOffset
// event: the offset (destination minus source wall clock), its error bound,
// the round trip of the sample kept, how many samples were taken and
// whether the offset was applied to the migration delta.
func ClockOffsetAttributes(offset, errorBound, rtt time.Duration, samples int, corrected bool) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int64(schema.AttrClockOffsetNs, offset.Nanoseconds()),
		attribute.Int64(schema.AttrClockOffsetErrorNs, errorBound.Nanoseconds()),
		attribute.Int64(schema.AttrClockRTTNs, rtt.Nanoseconds()),
		attribute.Int(schema.AttrClockSamples, samples),
		attribute.Bool(schema.AttrClockSkewCorrected, corrected),
	}
}

// BlackoutAttributes returns the attributes of a schema.EventBlackout
// event: the guest's pause-to-resume time across both hosts and the bound
// on its error (from the clock-offset estimate).
func BlackoutAttributes(blackout, errorBound time.Duration) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int64(schema.AttrBlackoutNs, blackout.Nanoseconds()),
		attribute.Int64(schema.AttrBlackoutErrorNs, errorBound.Nanoseconds()),
	}
}

// PrecopyRound is one RAM push round, as a schema.EventPrecopyRound event
// records it.
type PrecopyRound struct {
	Round      int           // index, from 0
	Pages      int64         // pages sent, zero pages included
	ZeroPages  int64         // pages sent as a zero marker
	Bytes      int64         // page payload bytes
	WireBytes  int64         // bytes on the wire
	DirtyPages int64         // pages still dirty after the round
	Duration   time.Duration // round's duration
}

// Attributes returns the event's attributes.
func (r PrecopyRound) Attributes() []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.Int(schema.AttrRAMRound, r.Round),
		attribute.Int64(schema.AttrRAMPages, r.Pages),
		attribute.Int64(schema.AttrRAMZeroPages, r.ZeroPages),
		attribute.Int64(schema.AttrRAMBytes, r.Bytes),
		attribute.Int64(schema.AttrRAMWireBytes, r.WireBytes),
		attribute.Int64(schema.AttrRAMDirtyPages, r.DirtyPages),
		attribute.Int64(schema.AttrRAMRoundNs, r.Duration.Nanoseconds()),
	}
}

// PhaseSpanAttributes returns the attributes every phase span starts with:
// the migration id, role, phase, and the host's monotonic clock at begin
// (schema.AttrPhaseBeginNs). Set schema.AttrPhaseEndNs with PhaseEnd.
func PhaseSpanAttributes(migrationID string, r schema.Role, p schema.Phase, beginNs int64) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String(schema.AttrMigrationID, migrationID),
		attribute.String(schema.AttrRole, r.String()),
		attribute.String(schema.AttrPhase, p.String()),
		attribute.Int64(schema.AttrPhaseBeginNs, beginNs),
	}
}

// PhaseEnd returns the attribute recording the host's monotonic clock when
// a phase ended.
func PhaseEnd(endNs int64) attribute.KeyValue {
	return attribute.Int64(schema.AttrPhaseEndNs, endNs)
}
