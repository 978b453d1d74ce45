package probes

import "fmt"

// PackagePath is the import path that prefixes every probe symbol.
const PackagePath = "github.com/migtrace/migtrace/probes"

// ID names one probe point. Tracers use it as the uprobe attach cookie, so
// one BPF program serves every probe; the values are part of the probe ABI.
type ID uint64

// The probe points.
const (
	IDMigrationBegin ID = iota + 1
	IDMigrationEnd
	IDPhaseBegin
	IDPhaseEnd
	IDRAMRegion
	IDTimeStage
)

// IDs lists every probe point.
var IDs = []ID{IDMigrationBegin, IDMigrationEnd, IDPhaseBegin, IDPhaseEnd, IDRAMRegion, IDTimeStage}

var idNames = [...]string{
	IDMigrationBegin: "MigrationBegin",
	IDMigrationEnd:   "MigrationEnd",
	IDPhaseBegin:     "PhaseBegin",
	IDPhaseEnd:       "PhaseEnd",
	IDRAMRegion:      "RAMRegion",
	IDTimeStage:      "TimeStage",
}

// Valid reports whether id is a known probe.
func (id ID) Valid() bool { return id >= IDMigrationBegin && id <= IDTimeStage }

// String returns the probe function's name, e.g. "PhaseBegin".
func (id ID) String() string {
	if id.Valid() {
		return idNames[id]
	}
	return fmt.Sprintf("ID(%d)", uint64(id))
}

// Symbol returns the probe function's linker symbol, e.g.
// "github.com/migtrace/migtrace/probes.PhaseBegin", as found in .symtab and
// .gopclntab and as bpftrace and DTrace name it.
func (id ID) Symbol() string { return PackagePath + "." + id.String() }
