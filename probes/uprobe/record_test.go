package uprobe_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/probes/probetest"
	"github.com/migtrace/migtrace/probes/uprobe"
)

func TestRecordRoundTrip(t *testing.T) {
	r := uprobe.Record{Timestamp: 1 << 62, PID: 7, TID: 9, Cookie: 3, Args: [9]uint64{1, 2, 3, 4, 5, 6, 7, 8, ^uint64(0)}}
	b, err := r.MarshalBinary()
	if err != nil || len(b) != uprobe.RecordSize {
		t.Fatalf("MarshalBinary: %d bytes, %v", len(b), err)
	}
	var back uprobe.Record
	if err := back.UnmarshalBinary(b); err != nil || back != r {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if err := back.UnmarshalBinary(b[:50]); err == nil || !strings.Contains(err.Error(), "50 bytes") {
		t.Errorf("short record: %v", err)
	}
}

func TestSymbolTableErrors(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := uprobe.OpenSymbolTable(notELF); err == nil || !strings.Contains(err.Error(), notELF) {
		t.Errorf("non-ELF file: %v, want an error naming it", err)
	}
	st, err := uprobe.OpenSymbolTable(probetest.BuildTarget(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Offset("main.noSuchProbe")
	var se *uprobe.SymbolError
	if !errors.Is(err, uprobe.ErrNoSymbol) || !errors.As(err, &se) || len(se.Symbols) != 1 || se.Symbols[0] != "main.noSuchProbe" {
		t.Errorf("missing symbol: %v", err)
	}
}
