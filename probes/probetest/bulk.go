package probetest

import (
	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Call is one probe call's arguments as the tracer sees them in registers:
// the value of each used argument register with its sub-word bits masked,
// and the mask (0 for unused registers).
type Call struct {
	ID   probes.ID
	Args [9]uint64
	Mask [9]uint64
}

const (
	word = ^uint64(0)
	b8   = uint64(0xff)
)

// Matches reports whether the raw registers carry c's arguments.
func (c Call) Matches(regs [9]uint64) bool {
	for i := range regs {
		if regs[i]&c.Mask[i] != c.Args[i] {
			return false
		}
	}
	return true
}

// BulkCall returns the arguments of the i-th bulk call of probe id. Every i
// gives a different argument set, so a tracer can prove it saw each call
// exactly once. Signed values are negative for some i to exercise sign
// handling; values use the full 64 bits.
func BulkCall(id probes.ID, i int) Call {
	u := uint64(i)
	role := uint64(1 + i%2)
	flag := uint64(i % 2)
	c := Call{ID: id}
	switch id {
	case probes.IDMigrationBegin:
		c.Args = [9]uint64{role, 0xA1A1_0000_0000_0000 | u, ^u}
		c.Mask = [9]uint64{b8, word, word}
	case probes.IDMigrationEnd:
		c.Args = [9]uint64{role, 0xB2B2_0000_0000_0000 | u, ^u, flag}
		c.Mask = [9]uint64{b8, word, word, b8}
	case probes.IDPhaseBegin:
		c.Args = [9]uint64{role, uint64(1 + i%9), uint64(-int64(1e12) - int64(i))}
		c.Mask = [9]uint64{b8, b8, word}
	case probes.IDPhaseEnd:
		c.Args = [9]uint64{role, uint64(1 + i%9), uint64(int64(1e12) + int64(i)), flag}
		c.Mask = [9]uint64{b8, b8, word, b8}
	case probes.IDRAMRegion:
		c.Args = [9]uint64{role, u, 1<<40 | u*4096, flag}
		c.Mask = [9]uint64{b8, word, word, b8}
	case probes.IDTimeStage:
		c.Args = [9]uint64{
			uint64(1 + i%3), 2649958945 + u, 0xDEADBEEF_0000_0000 + u,
			uint64(-int64(i)*1000 - 1), 3 * u, 7 * u, uint64(-int64(i)), flag,
		}
		c.Mask = [9]uint64{b8, word, word, word, word, word, word, b8}
	}
	return c
}

// Invoke calls c's probe with c's arguments.
func (c Call) Invoke() {
	a := c.Args
	switch c.ID {
	case probes.IDMigrationBegin:
		probes.MigrationBegin(schema.Role(a[0]), a[1], a[2])
	case probes.IDMigrationEnd:
		probes.MigrationEnd(schema.Role(a[0]), a[1], a[2], a[3] != 0)
	case probes.IDPhaseBegin:
		probes.PhaseBegin(schema.Role(a[0]), schema.Phase(a[1]), int64(a[2]))
	case probes.IDPhaseEnd:
		probes.PhaseEnd(schema.Role(a[0]), schema.Phase(a[1]), int64(a[2]), a[3] != 0)
	case probes.IDRAMRegion:
		probes.RAMRegion(schema.Role(a[0]), a[1], a[2], a[3] != 0)
	case probes.IDTimeStage:
		probes.TimeStage(schema.Stage(a[0]), a[1], a[2], int64(a[3]), int64(a[4]), int64(a[5]), int64(a[6]), a[7] != 0)
	}
}
