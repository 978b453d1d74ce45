package uprobe

import (
	"encoding/binary"
	"fmt"
)

// NumArgs is how many integer argument registers a Record carries: all of
// Go's amd64 ABIInternal integer argument registers.
const NumArgs = 9

// RecordSize is the size in bytes of one record as the program writes it:
// timestamp, pid_tgid, cookie and NumArgs registers, 8 bytes each.
const RecordSize = 8 * (3 + NumArgs)

// argRegOffsets are the byte offsets in x86-64 struct pt_regs (uapi layout)
// of Go's integer argument registers, in argument order:
// ax, bx, cx, di, si, r8, r9, r10, r11.
var argRegOffsets = [NumArgs]int16{80, 40, 88, 112, 104, 72, 64, 56, 48}

// Record is one probe hit as the BPF program wrote it.
type Record struct {
	// Timestamp is bpf_ktime_get_ns at the hit: CLOCK_MONOTONIC, in ns.
	Timestamp uint64
	PID       uint32 // thread group id: the process
	TID       uint32 // thread id
	Cookie    uint64 // the Target's cookie: which probe fired
	// Args are the raw argument registers. Sub-word arguments may carry
	// garbage in the upper bits; mask them (uint8(Args[0])) when decoding.
	Args [NumArgs]uint64
}

// UnmarshalBinary decodes a ring-buffer sample (native little-endian).
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) != RecordSize {
		return fmt.Errorf("decoding uprobe record: got %d bytes, want %d", len(b), RecordSize)
	}
	le := binary.LittleEndian
	r.Timestamp = le.Uint64(b[0:])
	pidTgid := le.Uint64(b[8:])
	r.PID = uint32(pidTgid >> 32)
	r.TID = uint32(pidTgid)
	r.Cookie = le.Uint64(b[16:])
	for i := range r.Args {
		r.Args[i] = le.Uint64(b[24+8*i:])
	}
	return nil
}

// MarshalBinary encodes r in the ring-buffer layout; tests and tools use it
// to produce records without a kernel.
func (r *Record) MarshalBinary() ([]byte, error) {
	b := make([]byte, RecordSize)
	le := binary.LittleEndian
	le.PutUint64(b[0:], r.Timestamp)
	le.PutUint64(b[8:], uint64(r.PID)<<32|uint64(r.TID))
	le.PutUint64(b[16:], r.Cookie)
	for i, a := range r.Args {
		le.PutUint64(b[24+8*i:], a)
	}
	return b, nil
}
