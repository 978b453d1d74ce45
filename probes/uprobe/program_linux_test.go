package uprobe

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// The program's fetch-and-add must assemble with BPF_FETCH in its
// immediate, or every hit would get the same slot (see fetchAdd).
func TestFetchAddEncoding(t *testing.T) {
	var b bytes.Buffer
	if _, err := fetchAdd(asm.R0, asm.R1).Marshal(&b, binary.LittleEndian); err != nil {
		t.Fatal(err)
	}
	const bpfFetch = 0x01 // BPF_ADD (0) | BPF_FETCH
	if got := binary.LittleEndian.Uint32(b.Bytes()[4:8]); got != bpfFetch {
		t.Fatalf("immediate %#x, want BPF_ADD|BPF_FETCH (%#x): % x", got, bpfFetch, b.Bytes())
	}
}
