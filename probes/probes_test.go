package probes_test

import (
	"os"
	"runtime"
	"testing"

	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/probes/probetest"
	"github.com/migtrace/migtrace/probes/uprobe"
	"github.com/migtrace/migtrace/tracing/schema"
)

func TestMain(m *testing.M) {
	code := probetest.RunMain(m)
	servertest.RemoveBinary()
	os.Exit(code)
}

// migtracePackage is the real program, whose migrate package calls every
// probe.
const migtracePackage = "github.com/migtrace/migtrace/cmd/migtrace"

// TestSymbols builds programs that call the probes - the test target and
// migtrace itself - and checks that every probe survived inlining and
// dead-code elimination under its documented symbol, found through
// .symtab or, stripped, through .gopclntab, and that on amd64 each starts
// with PUSHQ BP (0x55), which uprobes emulate.
func TestSymbols(t *testing.T) {
	tests := []struct {
		name   string
		pkg    string
		flags  []string
		source string
	}{
		{"target", probetest.TargetPackage, nil, ".symtab"},
		{"target/stripped", probetest.TargetPackage, []string{"-ldflags=-s -w"}, ".gopclntab"},
		{"target/pie", probetest.TargetPackage, []string{"-buildmode=pie"}, ".symtab"},
		{"migtrace", migtracePackage, nil, ".symtab"},
		{"migtrace/stripped", migtracePackage, []string{"-ldflags=-s -w"}, ".gopclntab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var bin string
			if tt.pkg == migtracePackage && tt.flags == nil {
				bin = servertest.Binary(t) // the very binary the e2e test traces, built once
			} else {
				bin = probetest.Build(t, tt.pkg, tt.flags...)
			}
			st, err := uprobe.OpenSymbolTable(bin)
			if err != nil {
				t.Fatal(err)
			}
			if st.Source() != tt.source {
				t.Errorf("symbols came from %s, want %s", st.Source(), tt.source)
			}
			f, err := os.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, id := range probes.IDs {
				off, err := st.Offset(id.Symbol())
				if err != nil {
					t.Errorf("%v", err)
					continue
				}
				if runtime.GOARCH != "amd64" {
					continue
				}
				first := make([]byte, 1)
				if _, err := f.ReadAt(first, int64(off)); err != nil {
					t.Fatal(err)
				}
				if first[0] != 0x55 {
					t.Errorf("%s starts with %#x, want 0x55 (PUSHQ BP)", id.Symbol(), first[0])
				}
			}
		})
	}
}

func TestIDs(t *testing.T) {
	for _, id := range probes.IDs {
		if !id.Valid() || id.Symbol() != probes.PackagePath+"."+id.String() {
			t.Errorf("%d: %q %q", uint64(id), id, id.Symbol())
		}
	}
	if probes.ID(0).Valid() || probes.ID(len(probes.IDs)+1).Valid() {
		t.Error("out-of-range IDs are valid")
	}
}

var sinkRole schema.Role

// plainProbe is what a probe looks like without the nosplit frame: an
// empty noinline function, the baseline for the probes' disabled cost.
//
//go:noinline
func plainProbe(role schema.Role, phase schema.Phase, hrtime int64) {}

// The disabled cost of a probe is its call; the goal is ≤ 2 ns. Compare
// with BenchmarkPlainEmptyFunc, the bare cost of a noinline call.
func BenchmarkPhaseBegin(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		probes.PhaseBegin(schema.RoleSource, schema.PhaseSync, int64(i))
	}
}

func BenchmarkTimeStage(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		probes.TimeStage(schema.StageKernel, 1, uint64(i), 3, 4, 5, 6, true)
	}
}

func BenchmarkPlainEmptyFunc(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		plainProbe(schema.RoleSource, schema.PhaseSync, int64(i))
	}
}
