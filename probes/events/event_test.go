package events_test

import (
	"errors"
	"testing"

	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/probes/events"
	"github.com/migtrace/migtrace/probes/uprobe"
	"github.com/migtrace/migtrace/tracing/schema"
)

func TestDecode(t *testing.T) {
	h := events.Header{Timestamp: 42, PID: 7, TID: 8}
	rec := func(id probes.ID, args ...uint64) uprobe.Record {
		r := uprobe.Record{Timestamp: 42, PID: 7, TID: 8, Cookie: uint64(id)}
		copy(r.Args[:], args)
		return r
	}
	tests := []struct {
		name string
		rec  uprobe.Record
		want events.Event
		err  bool
	}{
		{"migration begin, dirty upper bits", rec(probes.IDMigrationBegin, 0xABCD_0001, 0x0102030405060708, 0x090a0b0c0d0e0f10),
			events.MigrationBegin{Header: h, Role: schema.RoleSource,
				ID: events.MigrationID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}, false},
		{"migration end failed", rec(probes.IDMigrationEnd, 2, 0, 1, 0xff00_0001),
			events.MigrationEnd{Header: h, Role: schema.RoleDestination, ID: events.NewMigrationID(0, 1), Failed: true}, false},
		{"bool with only upper bits set is false", rec(probes.IDMigrationEnd, 2, 0, 1, 0xff00),
			events.MigrationEnd{Header: h, Role: schema.RoleDestination, ID: events.NewMigrationID(0, 1)}, false},
		{"phase begin negative hrtime", rec(probes.IDPhaseBegin, 1, 5, ^uint64(0)),
			events.PhaseBegin{Header: h, Role: schema.RoleSource, Phase: schema.PhaseTimeData, Hrtime: -1}, false},
		{"phase end", rec(probes.IDPhaseEnd, 1, 9, 1000, 0),
			events.PhaseEnd{Header: h, Role: schema.RoleSource, Phase: schema.PhaseFinish, Hrtime: 1000}, false},
		{"ram region", rec(probes.IDRAMRegion, 1, 3, 12288, 1),
			events.RAMRegion{Header: h, Role: schema.RoleSource, Pages: 3, Bytes: 12288, Paused: true}, false},
		{"time stage", rec(probes.IDTimeStage, 3, 2649958945, 1<<63+5, uint64(1<<63), 18, 19, 20, 1),
			events.TimeStage{Header: h, Stage: schema.StageKernel, GuestFreq: 2649958945, GuestTSC: 1<<63 + 5,
				BootHrtime: -1 << 63, DurationNs: 18, UptimeNs: 19, MigrateDeltaNs: 20, Negative: true}, false},
		{"unknown cookie", rec(0, 1), nil, true},
		{"cookie past the last probe", rec(probes.IDTimeStage+1, 1), nil, true},
		{"bad role", rec(probes.IDPhaseBegin, 3, 1, 0), nil, true},
		{"bad phase", rec(probes.IDPhaseEnd, 1, 10, 0, 0), nil, true},
		{"bad stage", rec(probes.IDTimeStage, 0), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := events.Decode(tt.rec)
			if tt.err {
				var de *events.DecodeError
				if !errors.Is(err, events.ErrBadRecord) || !errors.As(err, &de) {
					t.Fatalf("err = %v, want a *DecodeError wrapping ErrBadRecord", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, id := range probes.IDs {
		r := uprobe.Record{Cookie: uint64(id), Args: [9]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9}}
		b, _ := r.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r uprobe.Record
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		back, _ := r.MarshalBinary()
		if string(back) != string(b) {
			t.Fatalf("record does not round-trip")
		}
		e, err := events.Decode(r)
		if (e == nil) == (err == nil) {
			t.Fatalf("Decode returned event %v and error %v", e, err)
		}
		if e != nil {
			events.NewBuilder().Add(e)
		}
	})
}

func TestBuilder(t *testing.T) {
	id := events.NewMigrationID(1, 2)
	hdr := func(ts uint64) events.Header { return events.Header{Timestamp: ts, PID: 10, TID: 11} }
	src := schema.RoleSource
	tests := []struct {
		name    string
		in      []events.Event
		done    int
		dropped int
		check   func(t *testing.T, m *events.Migration)
	}{
		{
			name: "attached mid-migration: events before the begin are dropped",
			in: []events.Event{
				events.PhaseEnd{Header: hdr(1), Role: src, Phase: schema.PhaseSync, Hrtime: 5},
				events.MigrationEnd{Header: hdr(2), Role: src, ID: id},
			},
			dropped: 2,
		},
		{
			name: "failed phase and migration, unmatched phases",
			in: []events.Event{
				events.MigrationBegin{Header: hdr(1), Role: src, ID: id},
				events.PhaseBegin{Header: hdr(2), Role: src, Phase: schema.PhaseSync, Hrtime: 100},
				events.PhaseEnd{Header: hdr(3), Role: src, Phase: schema.PhaseSync, Hrtime: 250},
				events.PhaseEnd{Header: hdr(4), Role: src, Phase: schema.PhasePause, Hrtime: 300},
				events.PhaseBegin{Header: hdr(5), Role: src, Phase: schema.PhaseRamPushPrePause, Hrtime: 400},
				events.RAMRegion{Header: hdr(6), Role: src, Pages: 2, Bytes: 8192},
				events.PhaseEnd{Header: hdr(7), Role: src, Phase: schema.PhaseRamPushPrePause, Hrtime: 900, Failed: true},
				events.PhaseBegin{Header: hdr(8), Role: src, Phase: schema.PhaseFinish, Hrtime: 950},
				events.MigrationEnd{Header: hdr(9), Role: src, ID: id, Failed: true},
			},
			done: 1,
			check: func(t *testing.T, m *events.Migration) {
				if !m.Failed || len(m.Phases) != 2 || m.Phases[0].DurationNs() != 150 {
					t.Errorf("got %+v", m)
				}
				if p := m.Phases[1]; !p.Failed || p.RAM.Pages != 2 || p.RAM.Bytes != 8192 || p.Paused {
					t.Errorf("RAM phase %+v", p)
				}
				if m.Unpaused.Pages != 2 || m.Paused.Pages != 0 {
					t.Errorf("totals %+v %+v", m.Unpaused, m.Paused)
				}
				if len(m.Unmatched) != 2 || m.Unmatched[0] != "Pause" || m.Unmatched[1] != "Finish" {
					t.Errorf("Unmatched = %v", m.Unmatched)
				}
				spans := m.Traces(0).ResourceSpans().At(0).ScopeSpans().At(0).Spans()
				root := spans.At(spans.Len() - 1) // the root ends last, so it is written last
				if root.Name() != schema.SpanMigration {
					t.Fatalf("last span is %q, want the root", root.Name())
				}
				if v, _ := root.Attributes().Get(schema.AttrResult); v.Str() != schema.ResultFailure {
					t.Errorf("root result %q", v.Str())
				}
				if v, _ := root.Attributes().Get(schema.AttrErrorPhase); v.Str() != "RamPushPrePause" {
					t.Errorf("root error phase %q", v.Str())
				}
			},
		},
		{
			name: "time stages go to the destination only; end with another id is dropped",
			in: []events.Event{
				events.MigrationBegin{Header: hdr(1), Role: src, ID: id},
				events.TimeStage{Header: hdr(2), Stage: schema.StageMigration},
				events.MigrationEnd{Header: hdr(3), Role: src, ID: events.NewMigrationID(9, 9)},
			},
			dropped: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := events.NewBuilder()
			var done []*events.Migration
			for _, e := range tt.in {
				if m := b.Add(e); m != nil {
					done = append(done, m)
				}
			}
			if len(done) != tt.done || b.Dropped() != tt.dropped {
				t.Fatalf("finished %d, dropped %d; want %d, %d", len(done), b.Dropped(), tt.done, tt.dropped)
			}
			if tt.check != nil {
				tt.check(t, done[0])
			}
		})
	}
}
