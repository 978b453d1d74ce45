package report_test

import (
	"testing"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

func TestSummarizeByHostPair(t *testing.T) {
	side := func(id string, role schema.Role, instance, peer string) model.Side {
		return model.Side{ID: id, Role: role, Instance: instance, PeerName: peer, Result: schema.ResultSuccess}
	}
	tests := []struct {
		name  string
		sides []model.Side
		want  map[report.HostPair]int // migrations per pair
	}{
		{"both sides agree", []model.Side{
			side("m1", schema.RoleSource, "a", "b"), side("m1", schema.RoleDestination, "b", "a"),
			side("m2", schema.RoleSource, "a", "b"),
		}, map[report.HostPair]int{{Source: "a", Destination: "b"}: 2}},
		{"a side's own name outranks what its peer learnt", []model.Side{
			side("m1", schema.RoleSource, "a", "b-old"), side("m1", schema.RoleDestination, "b", "a-old"),
		}, map[report.HostPair]int{{Source: "a", Destination: "b"}: 1}},
		{"the peer's record fills a name in", []model.Side{
			side("m1", schema.RoleDestination, "b", "a"),
			side("m2", schema.RoleSource, "c", ""), side("m2", schema.RoleDestination, "b", "c"),
		}, map[report.HostPair]int{{Source: "a", Destination: "b"}: 1, {Source: "c", Destination: "b"}: 1}},
		{"a name no side recorded", []model.Side{
			side("m1", schema.RoleSource, "a", ""),
		}, map[report.HostPair]int{{Source: "a", Destination: report.UnknownInstance}: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := report.SummarizeByHostPair(tt.sides)
			if len(got) != len(tt.want) {
				t.Fatalf("%d pairs %+v, want %d", len(got), got, len(tt.want))
			}
			for i, g := range got {
				if n, ok := tt.want[g.Pair]; !ok || n != g.Summary.Migrations {
					t.Errorf("pair %s: %d migrations, want %d (listed %v)", g.Pair, g.Summary.Migrations, n, ok)
				}
				if i > 0 && got[i-1].Pair.String() > g.Pair.String() {
					t.Errorf("pairs out of order: %s before %s", got[i-1].Pair, g.Pair)
				}
			}
		})
	}
}
