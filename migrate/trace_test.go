package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

var update = flag.Bool("update", false, "rewrite report/otlpread/testdata/migrate-sim*.jsonl from fresh migrations")

// tracedPair runs one migration whose spans both sides export through the
// OTLP JSON Lines file exporter, as `serve --trace-file` does, and returns
// the file and what each side returned. The migration starts once the
// guest has run 20 ms and written at least before pages.
func tracedPair(t *testing.T, srcCfg, dstCfg Config, wrap func(net.Conn) net.Conn, before uint64, opts ...sim.Option) (trace []byte, src, dst *model.Side, dstErr error) {
	t.Helper()
	var buf bytes.Buffer
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracing.NewFileExporter(&buf)))
	srcCfg.Tracer, dstCfg.Tracer = tp.Tracer(schema.ScopeName), tp.Tracer(schema.ScopeName)
	srcCfg.Name, dstCfg.Name = "src-instance", "dst-instance"
	p := newPair(t, srcCfg, opts...)
	ctx := context.Background()
	id := NewID()
	p.serve(ctx, id, srcCfg, wrap)
	time.Sleep(20 * time.Millisecond) // let the guest dirty memory
	waitDirty(t, p.srcVM, before)
	vm, dres, err := RunDestination(ctx, p.dialer(), p.backend, id, dstCfg)
	if vm != nil {
		t.Cleanup(func() { _ = vm.Destroy() })
	}
	out := <-p.srcRes
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), out.res, dres, err
}

// decode reads a trace file back the way `migtrace report` does.
func decode(t *testing.T, trace []byte) []model.Side {
	t.Helper()
	r := otlpread.New()
	if err := r.Read(context.Background(), bytes.NewReader(trace), "trace"); err != nil {
		t.Fatal(err)
	}
	ms, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// normalise drops what differs between a time.Time in memory and one
// read back from a trace: its monotonic reading and location.
func normalise(m model.Side) model.Side {
	m.StartTime, m.EndTime = m.StartTime.UTC().Round(0), m.EndTime.UTC().Round(0)
	m.Phases = slices.Clone(m.Phases)
	for i := range m.Phases {
		p := &m.Phases[i]
		p.Start, p.End = p.Start.UTC().Round(0), p.End.UTC().Round(0)
	}
	m.SettingsChanges = slices.Clone(m.SettingsChanges)
	for i := range m.SettingsChanges {
		c := &m.SettingsChanges[i]
		c.Time = c.Time.UTC().Round(0)
	}
	return m
}

// TestTraceDecodesToWhatMigrateReturned is the codec's round trip on real
// data: what each side of a real migration returns equals what report
// rebuilds from the spans that side wrote, field for field.
func TestTraceDecodesToWhatMigrateReturned(t *testing.T) {
	for _, tc := range []struct {
		name         string
		dropAt       schema.Phase // cut the stream as the source begins it; 0 for none
		autoConverge bool         // the guest outpaces a bandwidth cap, and is throttled
		// cancelAt: the source's settings change, then it is cancelled, as
		// the source begins this phase; 0 for none.
		cancelAt schema.Phase
		wantErr  bool
		file     string // the testdata file -update writes
	}{
		{name: "success", file: "migrate-sim.jsonl"},
		{name: "failure in TimeData", dropAt: schema.PhaseTimeData, wantErr: true, file: "migrate-sim-failed.jsonl"},
		{name: "auto-converge", autoConverge: true, file: "migrate-sim-autoconverge.jsonl"},
		{name: "cancelled in RamPushPostPause", cancelAt: schema.PhaseRamPushPostPause, wantErr: true, file: "migrate-sim-cancelled.jsonl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcCfg, dstCfg := Config{IOTimeout: 10 * time.Second}, Config{IOTimeout: 10 * time.Second}
			opts, before := []sim.Option{sim.WithMemory(16 << 20), sim.WithDirtyRate(8 << 20)}, uint64(0)
			if tc.autoConverge {
				srcCfg = convergeSetup.cfg
				srcCfg.AutoConverge = true
				opts, before = convergeSetup.opts, convergeSetup.before
			}
			var wrap func(net.Conn) net.Conn
			if tc.dropAt != 0 {
				slot := &connSlot{}
				srcCfg.Progress, wrap = dropAt(tc.dropAt, slot), slot.set
			}
			if tc.cancelAt != 0 {
				srcCtl, dstCtl := NewControl(), NewControl()
				srcCfg.Control, dstCfg.Control = srcCtl, dstCtl
				dstCfg.PeerAPI, dstCfg.AskPeerCancelled = "source", askControl(srcCtl)
				bw, rounds := int64(256<<20), int64(3)
				srcCfg.Progress = func(p Progress) {
					if p.Phase != tc.cancelAt {
						return
					}
					if _, err := srcCtl.Update(Settings{MaxBandwidth: &bw, MaxRounds: &rounds}, "trace test"); err != nil {
						t.Error(err)
					}
					if err := srcCtl.Cancel("trace test"); err != nil {
						t.Error(err)
					}
				}
			}
			trace, src, dst, err := tracedPair(t, srcCfg, dstCfg, wrap, before, opts...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("destination error %v, want error: %v", err, tc.wantErr)
			}
			if tc.autoConverge && len(src.ThrottleSteps) == 0 {
				t.Fatalf("auto-converge did not throttle the guest: rounds %+v", src.PrecopyRounds)
			}
			got := decode(t, trace)
			if len(got) != 2 {
				t.Fatalf("decoded %d sides, want 2", len(got))
			}
			want := map[schema.Role]*model.Side{schema.RoleSource: src, schema.RoleDestination: dst}
			for _, g := range got {
				w := want[g.Role]
				if w == nil {
					t.Fatalf("decoded an unexpected %s side", g.Role)
				}
				if gn, wn := normalise(g), normalise(*w); !reflect.DeepEqual(gn, wn) {
					gj, _ := json.MarshalIndent(gn, "", " ")
					wj, _ := json.MarshalIndent(wn, "", " ")
					t.Errorf("%s side decoded from its trace:\n%s\nwant what migrate returned:\n%s", g.Role, gj, wj)
				}
			}
			if *update {
				path := filepath.Join("..", "report", "otlpread", "testdata", tc.file)
				if err := os.WriteFile(path, trace, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
