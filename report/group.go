package report

import (
	"cmp"
	"slices"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// UnknownInstance stands for an instance name no side of a migration
// recorded (it failed before ServerState, and that host's spans are not
// in the input).
const UnknownInstance = "(unknown)"

// HostPair is where a migration went: the source instance's name and the
// destination's.
type HostPair struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
}

// String reads "src-host → dst-host".
func (p HostPair) String() string { return p.Source + " → " + p.Destination }

// PairSummary is the summary of the migrations between one host pair.
type PairSummary struct {
	Pair    HostPair
	Summary Summary
}

// SummarizeByHostPair splits ms into their migrations' host pairs and
// summarises each, ordered by pair. Each migration's pair comes from all
// its sides: the source's own name or the one the destination learnt in
// ServerState, and likewise for the destination.
func SummarizeByHostPair(ms []model.Side) []PairSummary {
	pairs := make(map[string]HostPair)
	for _, m := range ms {
		p := pairs[m.ID]
		src, dst := m.Instance, m.PeerName
		if m.Role == schema.RoleDestination {
			src, dst = m.PeerName, m.Instance
		}
		// A side's own name outranks what its peer learnt of it.
		own := m.Role == schema.RoleSource && !m.ReportedByPeer
		if src != "" && (p.Source == "" || own) {
			p.Source = src
		}
		if dst != "" && (p.Destination == "" || m.Role == schema.RoleDestination) {
			p.Destination = dst
		}
		pairs[m.ID] = p
	}
	groups := make(map[HostPair][]model.Side)
	for _, m := range ms {
		p := pairs[m.ID]
		if p.Source == "" {
			p.Source = UnknownInstance
		}
		if p.Destination == "" {
			p.Destination = UnknownInstance
		}
		groups[p] = append(groups[p], m)
	}
	out := make([]PairSummary, 0, len(groups))
	for p, sides := range groups {
		out = append(out, PairSummary{Pair: p, Summary: Summarize(sides)})
	}
	slices.SortFunc(out, func(a, b PairSummary) int {
		return cmp.Or(cmp.Compare(a.Pair.Source, b.Pair.Source), cmp.Compare(a.Pair.Destination, b.Pair.Destination))
	})
	return out
}
