package guest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryMatchesSource reassembles guest.asm and requires the bytes
// embedded as Binary: guest.bin must never drift from its source.
func TestBinaryMatchesSource(t *testing.T) {
	nasm, err := exec.LookPath("nasm")
	if err != nil {
		t.Skip("no nasm on this host (Debian package nasm)")
	}
	out := filepath.Join(t.TempDir(), "guest.bin")
	if msg, err := exec.Command(nasm, "-f", "bin", "-o", out, "guest.asm").CombinedOutput(); err != nil {
		t.Fatalf("nasm: %v\n%s", err, msg)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Binary) {
		t.Errorf("guest.bin (%d bytes) differs from guest.asm assembled (%d bytes): run go generate ./migrate/peerbench/guest", len(Binary), len(got))
	}
}

// TestBinaryHeader checks the multiboot header QEMU's loader looks for.
func TestBinaryHeader(t *testing.T) {
	le := func(off int) uint32 {
		b := Binary[off:]
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	}
	magic, flags, sum := le(0), le(4), le(8)
	if magic != 0x1BADB002 || magic+flags+sum != 0 || flags&(1<<16) == 0 {
		t.Errorf("multiboot header magic %#x flags %#x checksum %#x", magic, flags, sum)
	}
	loadAddr, loadEnd := le(16), le(20)
	if loadAddr != 0x100000 || int(loadEnd-loadAddr) != len(Binary) {
		t.Errorf("load [%#x, %#x) for a %d-byte file", loadAddr, loadEnd, len(Binary))
	}
	if bssEnd := le(24); bssEnd > FirstFreeMiB<<20 {
		t.Errorf("the guest reaches %#x, into the dirtying region from %d MiB", bssEnd, FirstFreeMiB)
	}
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		in      string
		want    Line
		wantErr bool
	}{
		{"SeaBIOS (version 1.16.2-debian-1.16.2-1)", Line{Kind: LineOther}, false},
		{"Booting from ROM..", Line{Kind: LineOther}, false},
		{"peerbench-guest tsc_khz=2100404 rate=256 start=2 size=252\r",
			Line{Kind: LineBanner, TSCkHz: 2100404, Params: Params{RateMiB: 256, StartMiB: 2, SizeMiB: 252}}, false},
		{"hb 3 dirtied=184808", Line{Kind: LineHeartbeat, Seq: 3, Dirtied: 184808}, false},
		{"peerbench-guest error: region outside RAM", Line{Kind: LineError, Message: "region outside RAM"}, false},
		{"hb 3", Line{}, true},
		{"hb x dirtied=1", Line{}, true},
		{"hb 3 dirtied=-1", Line{}, true},
		{"hb 3 written=1", Line{}, true},
		{"peerbench-guest tsc_khz=1 rate=2 start=3", Line{}, true},
		{"peerbench-guest tsc_khz=1 rate=4294967296 start=2 size=1", Line{}, true},
		{"peerbench-guest tsc_khz=1 size=2 start=3 rate=1", Line{}, true},
	}
	for _, tt := range tests {
		got, err := ParseLine(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLine(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParams(t *testing.T) {
	p, err := ForMemory(256, 256, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Params{RateMiB: 256, StartMiB: 2, SizeMiB: 252}); p != want {
		t.Errorf("ForMemory(256) = %+v, want %+v", p, want)
	}
	if err := p.Validate(256); err != nil {
		t.Errorf("Validate: %v", err)
	}
	if got := p.Cmdline(); got != "rate=256 start=2 size=252" {
		t.Errorf("Cmdline = %q", got)
	}
	// Above 3 GiB the PCI hole splits RAM: the region stays below it.
	big, err := ForMemory(4096, 0, 2)
	if err != nil || big.StartMiB+big.SizeMiB != 3070 {
		t.Errorf("ForMemory(4096) = %+v, %v", big, err)
	}
	if _, err := ForMemory(4, 1, 2); err == nil {
		t.Error("ForMemory(4 MiB) leaves no region but did not fail")
	}
	tests := []struct {
		p       Params
		mem     uint32
		wantErr bool
	}{
		{Params{StartMiB: 2, SizeMiB: 254}, 256, false},
		{Params{StartMiB: 1, SizeMiB: 4}, 256, true},         // over the guest itself
		{Params{StartMiB: 2}, 256, true},                     // empty
		{Params{StartMiB: 2, SizeMiB: 255}, 256, true},       // past the end of RAM
		{Params{StartMiB: 4000, SizeMiB: 200}, 8192, true},   // past the 4 GiB the guest maps
		{Params{StartMiB: 3000, SizeMiB: 1096}, 8192, false}, // up to exactly 4 GiB
	}
	for _, tt := range tests {
		err := tt.p.Validate(tt.mem)
		if (err != nil) != tt.wantErr {
			t.Errorf("Validate(%+v, %d MiB) = %v, want error %v", tt.p, tt.mem, err, tt.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "region") {
			t.Errorf("Validate(%+v): %v does not name the region", tt.p, err)
		}
	}
}
