package report

import (
	"errors"
	"fmt"
	"strings"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Errors returned by Select and the readers; match them with errors.Is.
var (
	// ErrNoMigrations: the input held no migtrace migration spans at all.
	ErrNoMigrations = errors.New("no migration spans in the input")
	// ErrMigrationNotFound: the selected migration id is not in the input.
	ErrMigrationNotFound = errors.New("migration not found")
	// ErrNoPhases: a selected side has no phase spans.
	ErrNoPhases = errors.New("no phase spans")
	// ErrNoTimeData: no selected side recorded the time-data stages.
	ErrNoTimeData = errors.New("no time-data stages")
	// ErrPhaseReversed: a phase ends before it begins, so its elapsed
	// time would be negative.
	ErrPhaseReversed = errors.New("phase ends before it begins")
)

// Selection picks migrations out of an input. The zero value selects
// every side of every migration.
type Selection struct {
	MigrationID string      // "" for all
	Role        schema.Role // 0 for both
}

// Matches reports whether m is selected.
func (s Selection) Matches(m *model.Side) bool {
	return (s.MigrationID == "" || strings.EqualFold(s.MigrationID, m.ID)) &&
		(s.Role == 0 || s.Role == m.Role)
}

// Select returns the selected migrations in start order (ties by id, then
// source before destination). It fails when nothing is selected, naming
// the ids that were present when the selected one is not.
func Select(all []model.Side, sel Selection) ([]model.Side, error) {
	if len(all) == 0 {
		return nil, ErrNoMigrations
	}
	var out []model.Side
	idSeen := false
	for i := range all {
		if sel.MigrationID == "" || strings.EqualFold(sel.MigrationID, all[i].ID) {
			idSeen = true
		}
		if sel.Matches(&all[i]) {
			out = append(out, all[i])
		}
	}
	if !idSeen {
		return nil, fmt.Errorf("%w: %q (the input has %s)", ErrMigrationNotFound, sel.MigrationID, listIDs(all))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no %s side of migration %s in the input", ErrMigrationNotFound, sel.Role, sel.MigrationID)
	}
	model.SortByStart(out)
	return out, nil
}

// RequirePhases fails with ErrNoPhases naming the first side that has no
// phase spans, or with ErrPhaseReversed naming the first phase that ends
// before it begins: a table would print its negative time as if it were
// a measurement.
func RequirePhases(ms []model.Side) error {
	for i := range ms {
		if len(ms[i].Phases) == 0 {
			return fmt.Errorf("migration %s %s: %w (only its root span is in the input)", ms[i].ID, ms[i].Role, ErrNoPhases)
		}
		for _, p := range ms[i].Phases {
			if p.BeginNs > p.EndNs {
				return fmt.Errorf("migration %s %s: %s: %w (begin %d ns, end %d ns); `migtrace report check` names what else is wrong",
					ms[i].ID, ms[i].Role, p.Phase, ErrPhaseReversed, p.BeginNs, p.EndNs)
			}
		}
	}
	return nil
}

func listIDs(all []model.Side) string {
	var ids []string
	seen := make(map[string]bool)
	for i := range all {
		if !seen[all[i].ID] {
			seen[all[i].ID] = true
			ids = append(ids, all[i].ID)
		}
	}
	const shown = 5
	if len(ids) > shown {
		return fmt.Sprintf("%d migrations: %s, ...", len(ids), strings.Join(ids[:shown], ", "))
	}
	return strings.Join(ids, ", ")
}

// WithTimeData keeps the sides that recorded every time-data stage: the
// destinations whose adjustment table can be printed.
func WithTimeData(ms []model.Side) []model.Side {
	var out []model.Side
	for _, m := range ms {
		if m.HasTimeData() {
			out = append(out, m)
		}
	}
	return out
}

// ByMigration groups sides by migration id, the migrations in the order
// they first appear and each one's sides in input order.
func ByMigration(ms []model.Side) [][]model.Side {
	var ids []string
	by := make(map[string][]model.Side)
	for _, m := range ms {
		if _, ok := by[m.ID]; !ok {
			ids = append(ids, m.ID)
		}
		by[m.ID] = append(by[m.ID], m)
	}
	out := make([][]model.Side, len(ids))
	for i, id := range ids {
		out[i] = by[id]
	}
	return out
}
