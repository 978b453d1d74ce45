package events

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/probes/uprobe"
	"github.com/migtrace/migtrace/tracing/schema"
)

// ErrBadRecord: a record that no probe could have produced.
var ErrBadRecord = errors.New("bad probe record")

// DecodeError names the probe and what was wrong with its record.
type DecodeError struct {
	Probe  probes.ID
	Reason string
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decoding a %v probe record: %s", e.Probe, e.Reason)
}

// Unwrap returns ErrBadRecord.
func (e *DecodeError) Unwrap() error { return ErrBadRecord }

// Header is what every event carries from its record.
type Header struct {
	Timestamp uint64 `json:"ts"` // CLOCK_MONOTONIC ns at the probe hit
	PID       uint32 `json:"pid"`
	TID       uint32 `json:"tid"`
}

// Hdr returns the header; it makes every event type an Event.
func (h Header) Hdr() Header { return h }

// Event is one of the typed probe events below.
type Event interface{ Hdr() Header }

// MigrationID is a migration's UUID.
type MigrationID [16]byte

// NewMigrationID joins the big-endian halves the probes pass.
func NewMigrationID(hi, lo uint64) MigrationID {
	var id MigrationID
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id
}

// String formats the UUID as 8-4-4-4-12 lowercase hex.
func (id MigrationID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}

// MarshalText makes the UUID a JSON string.
func (id MigrationID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// MigrationBegin is probes.MigrationBegin.
type MigrationBegin struct {
	Header
	Role schema.Role
	ID   MigrationID
}

// MigrationEnd is probes.MigrationEnd.
type MigrationEnd struct {
	Header
	Role   schema.Role
	ID     MigrationID
	Failed bool
}

// PhaseBegin is probes.PhaseBegin.
type PhaseBegin struct {
	Header
	Role   schema.Role
	Phase  schema.Phase
	Hrtime int64
}

// PhaseEnd is probes.PhaseEnd.
type PhaseEnd struct {
	Header
	Role   schema.Role
	Phase  schema.Phase
	Hrtime int64
	Failed bool
}

// RAMRegion is probes.RAMRegion.
type RAMRegion struct {
	Header
	Role   schema.Role
	Pages  uint64
	Bytes  uint64
	Paused bool
}

// TimeStage is probes.TimeStage.
type TimeStage struct {
	Header
	Stage          schema.Stage
	GuestFreq      uint64
	GuestTSC       uint64
	BootHrtime     int64
	DurationNs     int64
	UptimeNs       int64
	MigrateDeltaNs int64
	Negative       bool
}

// Targets returns the uprobe targets for every probe point, the record
// cookie being the probe's ID.
func Targets() []uprobe.Target {
	ts := make([]uprobe.Target, len(probes.IDs))
	for i, id := range probes.IDs {
		ts[i] = uprobe.Target{Symbol: id.Symbol(), Cookie: uint64(id)}
	}
	return ts
}

// Decode types a record by its cookie (the probe ID), reading arguments in
// the probe's signature order. Sub-word arguments are masked: the Go ABI
// leaves the upper bits of their registers unspecified.
func Decode(r uprobe.Record) (Event, error) {
	id := probes.ID(r.Cookie)
	a := r.Args
	h := Header{Timestamp: r.Timestamp, PID: r.PID, TID: r.TID}
	bad := func(format string, args ...any) (Event, error) {
		return nil, &DecodeError{Probe: id, Reason: fmt.Sprintf(format, args...)}
	}
	flag := func(v uint64) bool { return uint8(v) != 0 }
	var role schema.Role
	switch id {
	case probes.IDMigrationBegin, probes.IDMigrationEnd, probes.IDPhaseBegin, probes.IDPhaseEnd, probes.IDRAMRegion:
		role = schema.Role(uint8(a[0]))
		if role != schema.RoleSource && role != schema.RoleDestination {
			return bad("role %d is neither source nor destination", uint8(a[0]))
		}
	case probes.IDTimeStage:
	default:
		return nil, &DecodeError{Probe: id, Reason: "unknown probe id (attach cookie)"}
	}
	switch id {
	case probes.IDMigrationBegin:
		return MigrationBegin{Header: h, Role: role, ID: NewMigrationID(a[1], a[2])}, nil
	case probes.IDMigrationEnd:
		return MigrationEnd{Header: h, Role: role, ID: NewMigrationID(a[1], a[2]), Failed: flag(a[3])}, nil
	case probes.IDPhaseBegin, probes.IDPhaseEnd:
		p := schema.Phase(uint8(a[1]))
		if !p.Valid() {
			return bad("unknown phase %d", uint8(a[1]))
		}
		if id == probes.IDPhaseBegin {
			return PhaseBegin{Header: h, Role: role, Phase: p, Hrtime: int64(a[2])}, nil
		}
		return PhaseEnd{Header: h, Role: role, Phase: p, Hrtime: int64(a[2]), Failed: flag(a[3])}, nil
	case probes.IDRAMRegion:
		return RAMRegion{Header: h, Role: role, Pages: a[1], Bytes: a[2], Paused: flag(a[3])}, nil
	default: // IDTimeStage
		s := schema.Stage(uint8(a[0]))
		if s < schema.StageMigration || s > schema.StageKernel {
			return bad("unknown time-data stage %d", uint8(a[0]))
		}
		return TimeStage{Header: h, Stage: s, GuestFreq: a[1], GuestTSC: a[2], BootHrtime: int64(a[3]),
			DurationNs: int64(a[4]), UptimeNs: int64(a[5]), MigrateDeltaNs: int64(a[6]), Negative: flag(a[7])}, nil
	}
}
