package guest

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

//go:generate nasm -f bin -o guest.bin guest.asm

// Binary is guest.bin, assembled from guest.asm.
//
//go:embed guest.bin
var Binary []byte

// FirstFreeMiB is the lowest MiB the guest's dirtying region may start
// at: below it sit the guest itself, its page tables and the loader's
// data. The guest maps, and so may dirty, only the first MapMiB.
const (
	FirstFreeMiB = 2
	MapMiB       = 4096
)

// Params are the guest's parameters, in MiB.
type Params struct {
	// RateMiB is how many MiB of pages the guest writes per second; 0 is
	// the idle mode.
	RateMiB uint32
	// StartMiB and SizeMiB give the region the guest picks pages from.
	StartMiB, SizeMiB uint32
}

// ForMemory returns the parameters of a guest of memMiB that dirties
// rateMiB per second across all of its memory from FirstFreeMiB up to
// reserveMiB below the top, where firmware keeps its tables (ACPI, the
// BIOS's high memory), and below the PCI hole that a guest larger than
// 3 GiB has at 3 GiB.
func ForMemory(memMiB, rateMiB, reserveMiB uint32) (Params, error) {
	top := min(memMiB, 3072)
	if top < FirstFreeMiB+reserveMiB+1 {
		return Params{}, fmt.Errorf("guest memory %d MiB leaves no room to dirty", memMiB)
	}
	return Params{RateMiB: rateMiB, StartMiB: FirstFreeMiB, SizeMiB: top - reserveMiB - FirstFreeMiB}, nil
}

// Validate checks what the guest itself checks, so a bad parameter fails
// before QEMU boots.
func (p Params) Validate(memMiB uint32) error {
	if p.StartMiB < FirstFreeMiB {
		return fmt.Errorf("region start %d MiB: the guest occupies the first %d MiB", p.StartMiB, FirstFreeMiB)
	}
	if p.SizeMiB == 0 {
		return errors.New("region size 0")
	}
	end := uint64(p.StartMiB) + uint64(p.SizeMiB)
	if end > uint64(memMiB) || end > MapMiB {
		return fmt.Errorf("region [%d, %d) MiB ends beyond the guest's %d MiB or the %d MiB it maps", p.StartMiB, end, memMiB, MapMiB)
	}
	return nil
}

// Cmdline is the guest's command line (qemu -append).
func (p Params) Cmdline() string {
	return fmt.Sprintf("rate=%d start=%d size=%d", p.RateMiB, p.StartMiB, p.SizeMiB)
}

// WriteFile writes Binary to dir and returns its path, for qemu -kernel.
func WriteFile(dir string) (string, error) {
	path := filepath.Join(dir, "peerbench-guest.bin")
	if err := os.WriteFile(path, Binary, 0o644); err != nil {
		return "", fmt.Errorf("writing the guest binary: %w", err)
	}
	return path, nil
}

// LineKind says what a serial line is.
type LineKind int

// The guest's lines; anything else (firmware output) is LineOther.
const (
	LineOther LineKind = iota
	LineBanner
	LineHeartbeat
	LineError
)

// Line is one parsed serial line.
type Line struct {
	Kind LineKind
	// Banner: the calibrated TSC frequency and the parameters it runs with.
	TSCkHz uint64
	Params Params
	// Heartbeat: its sequence number (one a second) and the pages the
	// guest has written in all.
	Seq, Dirtied uint64
	// Error: the guest's message; it has halted.
	Message string
}

const (
	bannerPrefix = "peerbench-guest tsc_khz="
	errorPrefix  = "peerbench-guest error: "
	hbPrefix     = "hb "
)

// ParseLine parses one line of the guest's serial output (without its
// newline). Firmware output parses as LineOther; a line that starts like
// one of the guest's but does not parse is an error.
func ParseLine(s string) (Line, error) {
	s = strings.TrimRight(s, "\r")
	switch {
	case strings.HasPrefix(s, errorPrefix):
		return Line{Kind: LineError, Message: strings.TrimPrefix(s, errorPrefix)}, nil
	case strings.HasPrefix(s, bannerPrefix):
		f, err := fields(strings.TrimPrefix(s, "peerbench-guest "), "tsc_khz", "rate", "start", "size")
		if err != nil {
			return Line{}, fmt.Errorf("guest banner %q: %w", s, err)
		}
		for _, v := range f[1:] {
			if v > 1<<32-1 {
				return Line{}, fmt.Errorf("guest banner %q: parameter out of range", s)
			}
		}
		return Line{Kind: LineBanner, TSCkHz: f[0],
			Params: Params{RateMiB: uint32(f[1]), StartMiB: uint32(f[2]), SizeMiB: uint32(f[3])}}, nil
	case strings.HasPrefix(s, hbPrefix):
		rest := strings.TrimPrefix(s, hbPrefix)
		seq, tail, ok := strings.Cut(rest, " ")
		if !ok {
			return Line{}, fmt.Errorf("guest heartbeat %q: no dirtied count", s)
		}
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			return Line{}, fmt.Errorf("guest heartbeat %q: sequence: %w", s, err)
		}
		f, err := fields(tail, "dirtied")
		if err != nil {
			return Line{}, fmt.Errorf("guest heartbeat %q: %w", s, err)
		}
		return Line{Kind: LineHeartbeat, Seq: n, Dirtied: f[0]}, nil
	}
	return Line{Kind: LineOther}, nil
}

// fields parses "k1=v1 k2=v2 ..." with exactly the keys given, in order.
func fields(s string, keys ...string) ([]uint64, error) {
	parts := strings.Split(s, " ")
	if len(parts) != len(keys) {
		return nil, fmt.Errorf("want %d fields %v, have %d", len(keys), keys, len(parts))
	}
	out := make([]uint64, len(keys))
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k != keys[i] {
			return nil, fmt.Errorf("field %d is %q, want %s=N", i+1, p, keys[i])
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[i] = n
	}
	return out, nil
}
