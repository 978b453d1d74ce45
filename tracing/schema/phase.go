package schema

import "fmt"

// Phase is one step of the migration protocol. The numeric values are part
// of the wire format and of the probe ABI (probes pass a Phase as a uint8),
// so they never change; new phases get new numbers.
type Phase uint8

// The phases in protocol order. The names match propolis's MigratePhase
// Display names, which are also the keys of its DTrace scripts.
const (
	PhaseSync Phase = iota + 1
	PhaseRamPushPrePause
	PhasePause
	PhaseRamPushPostPause
	PhaseTimeData
	PhaseDeviceState
	PhaseRamPull
	PhaseServerState
	PhaseFinish
)

var phaseNames = [...]string{
	PhaseSync:             "Sync",
	PhaseRamPushPrePause:  "RamPushPrePause",
	PhasePause:            "Pause",
	PhaseRamPushPostPause: "RamPushPostPause",
	PhaseTimeData:         "TimeData",
	PhaseDeviceState:      "DeviceState",
	PhaseRamPull:          "RamPull",
	PhaseServerState:      "ServerState",
	PhaseFinish:           "Finish",
}

// Phases lists every phase in protocol order, Pause included.
var Phases = []Phase{
	PhaseSync, PhaseRamPushPrePause, PhasePause, PhaseRamPushPostPause,
	PhaseTimeData, PhaseDeviceState, PhaseRamPull, PhaseServerState, PhaseFinish,
}

// String returns the phase's display name, e.g. "RamPushPrePause".
func (p Phase) String() string {
	if p.Valid() {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// Valid reports whether p is a known phase.
func (p Phase) Valid() bool {
	return p >= PhaseSync && int(p) < len(phaseNames)
}

// Runs reports whether a side in role r runs phase p. The destination has
// no Pause phase: only the source pauses its VM.
func (p Phase) Runs(r Role) bool {
	if !p.Valid() {
		return false
	}
	return p != PhasePause || r == RoleSource
}

// ParsePhase returns the phase with the given display name.
func ParsePhase(name string) (Phase, error) {
	for _, p := range Phases {
		if phaseNames[p] == name {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown phase %q", name)
}

// Role is the side of a migration a process plays.
type Role uint8

// The two roles. Values are part of the probe ABI.
const (
	RoleSource Role = iota + 1
	RoleDestination
)

// String returns "source" or "destination".
func (r Role) String() string {
	switch r {
	case RoleSource:
		return "source"
	case RoleDestination:
		return "destination"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// ParseRole accepts "source" or "destination".
func ParseRole(s string) (Role, error) {
	switch s {
	case "source":
		return RoleSource, nil
	case "destination":
		return RoleDestination, nil
	}
	return 0, fmt.Errorf("unknown role %q (want source or destination)", s)
}

// Stage is one of the three time-data stages the destination records, the
// rows of propolis's time-adjustments.d table.
type Stage uint8

// The stages in the order they happen. Values are part of the probe ABI.
const (
	// StageMigration is the source's time data as received; its duration is
	// the wall-clock migration delta.
	StageMigration Stage = iota + 1
	// StageUserspace is migtrace's own adjustment (propolis's "Propolis"
	// row); its duration runs until the write to the VMM.
	StageUserspace
	// StageKernel is the VMM's correction for the latency between the
	// caller's write and its receipt (propolis's "Kernel" row).
	StageKernel
)

// Stages lists the stages in order.
var Stages = []Stage{StageMigration, StageUserspace, StageKernel}

// String returns the stage's attribute value: "migration", "userspace" or "kernel".
func (s Stage) String() string {
	switch s {
	case StageMigration:
		return "migration"
	case StageUserspace:
		return "userspace"
	case StageKernel:
		return "kernel"
	}
	return fmt.Sprintf("Stage(%d)", uint8(s))
}

// Valid reports whether s is a known stage.
func (s Stage) Valid() bool { return s >= StageMigration && s <= StageKernel }

// Label returns the row label operators know from time-adjustments.d:
// "Migration", "Propolis" (the userspace stage) or "Kernel".
func (s Stage) Label() string {
	switch s {
	case StageMigration:
		return "Migration"
	case StageUserspace:
		return "Propolis"
	case StageKernel:
		return "Kernel"
	}
	return s.String()
}

// ParseStage accepts the values String returns.
func ParseStage(v string) (Stage, error) {
	for _, s := range Stages {
		if s.String() == v {
			return s, nil
		}
	}
	return 0, fmt.Errorf("unknown time-data stage %q", v)
}

// MarshalText writes the phase's display name, so JSON documents (the
// server's API, report -o json) name phases rather than number them.
func (p Phase) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("marshalling %v: not a phase", p)
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads what MarshalText wrote.
func (p *Phase) UnmarshalText(b []byte) error {
	v, err := ParsePhase(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// MarshalText writes "source" or "destination".
func (r Role) MarshalText() ([]byte, error) {
	if r != RoleSource && r != RoleDestination {
		return nil, fmt.Errorf("marshalling %v: not a role", r)
	}
	return []byte(r.String()), nil
}

// UnmarshalText reads what MarshalText wrote.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
