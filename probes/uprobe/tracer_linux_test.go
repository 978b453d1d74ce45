package uprobe_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/probes/probetest"
	"github.com/migtrace/migtrace/probes/uprobe"
)

func allTargets() []uprobe.Target {
	var ts []uprobe.Target
	for _, id := range probes.IDs {
		ts = append(ts, uprobe.Target{Symbol: id.Symbol(), Cookie: uint64(id)})
	}
	return ts
}

// readAll reads records until the target has exited.
func readAll(t *testing.T, tr *uprobe.Tracer) []uprobe.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []uprobe.Record
	for {
		recs, err := tr.Read(ctx)
		if errors.Is(err, uprobe.ErrProcessExited) {
			return all
		}
		if err != nil {
			t.Fatalf("reading records: %v", err)
		}
		all = append(all, recs...)
	}
}

// TestAttachBulk attaches to a target that calls every probe n times from
// several OS threads and checks that every call arrives once, with exact
// arguments, for every way the target may have been built.
func TestAttachBulk(t *testing.T) {
	const n, threads = 1000, 4
	builds := []struct {
		name  string
		flags []string
	}{
		{"default", nil},
		{"trimpath", []string{"-trimpath"}},
		{"pie", []string{"-buildmode=pie"}},
		{"stripped", []string{"-ldflags=-s -w"}},
	}
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) {
			bin := probetest.BuildTarget(t, b.flags...)
			p := probetest.Start(t, bin, "bulk", "-n", "1000", "-threads", "4")
			tr, err := uprobe.Attach(allTargets(), &uprobe.Options{PID: p.PID})
			probetest.SkipIfNotSupported(t, err)
			defer tr.Close()
			p.Go(t)
			recs := readAll(t, tr)
			if lost, err := tr.Lost(); err != nil || lost != 0 {
				t.Errorf("Lost() = %d, %v; want 0", lost, err)
			}

			want := map[probes.ID][]probetest.Call{}
			for _, id := range probes.IDs {
				for i := 0; i < n; i++ {
					want[id] = append(want[id], probetest.BulkCall(id, i))
				}
			}
			seen := map[probes.ID][]bool{}
			for _, id := range probes.IDs {
				seen[id] = make([]bool, n)
			}
			tids := map[uint32]bool{}
			var prevTS uint64
			for _, r := range recs {
				if r.PID != uint32(p.PID) {
					t.Fatalf("record from pid %d, want %d", r.PID, p.PID)
				}
				if r.Timestamp < prevTS {
					t.Fatalf("records out of timestamp order: %d after %d", r.Timestamp, prevTS)
				}
				prevTS = r.Timestamp
				tids[r.TID] = true
				id := probes.ID(r.Cookie)
				calls, ok := want[id]
				if !ok {
					t.Fatalf("record with unknown cookie %d", r.Cookie)
				}
				i := bulkIndex(calls, r.Args)
				if i < 0 {
					t.Fatalf("%v: registers %#x match no call", id, r.Args)
				}
				if seen[id][i] {
					t.Fatalf("%v call %d seen twice", id, i)
				}
				seen[id][i] = true
			}
			for _, id := range probes.IDs {
				for i, ok := range seen[id] {
					if !ok {
						t.Errorf("%v call %d (args %#x) never seen", id, i, want[id][i].Args)
						break
					}
				}
			}
			if len(recs) != n*len(probes.IDs) {
				t.Errorf("got %d records, want %d", len(recs), n*len(probes.IDs))
			}
			if len(tids) < threads {
				t.Errorf("records came from %d threads, want at least %d", len(tids), threads)
			}
		})
	}
}

// bulkIndex finds which bulk call the registers carry. The first argument
// word after the role distinguishes calls, but matching every call keeps the
// check independent of the pattern.
func bulkIndex(calls []probetest.Call, regs [9]uint64) int {
	for i, c := range calls {
		if c.Matches(regs) {
			return i
		}
	}
	return -1
}

func TestAttachErrors(t *testing.T) {
	bin := probetest.BuildTarget(t)
	p := probetest.Start(t, bin, "bulk", "-n", "1")

	_, err := uprobe.Attach([]uprobe.Target{{Symbol: "main.noSuchProbe"}, {Symbol: "main.notThereEither"}}, &uprobe.Options{PID: p.PID})
	var se *uprobe.SymbolError
	if !errors.Is(err, uprobe.ErrNoSymbol) || !errors.As(err, &se) || se.Binary != bin || len(se.Symbols) != 2 {
		t.Errorf("missing symbol: got %v, want ErrNoSymbol naming both symbols and %s", err, bin)
	}

	_, err = uprobe.Attach(allTargets(), &uprobe.Options{PID: 1 << 30})
	if !errors.Is(err, uprobe.ErrNoProcess) {
		t.Errorf("bad pid: got %v, want ErrNoProcess", err)
	}
	p.Go(t)
}
