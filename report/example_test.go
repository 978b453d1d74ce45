package report_test

import (
	"fmt"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

func ExampleCheck() {
	m := reporttest.SeedDestination()
	// Doctor the trace: the userspace stage claims one tick too many.
	u := &m.Stages[model.StageIndex(schema.StageUserspace)]
	u.GuestTSCDelta++
	u.GuestTSC++
	m.Stages[model.StageIndex(schema.StageKernel)].GuestTSC++

	r := report.CheckMigration([]model.Side{m}, report.Options{})
	for _, f := range r.Violations() {
		fmt.Printf("%s: expected %s, got %s\n", f.Rule, f.Expected, f.Got)
	}
	// Output:
	// tsc-delta: expected 285087, got 285088
}

func ExampleSummarize() {
	s := report.Summarize(reporttest.Fleet(10, 1))
	for _, p := range s.Phases {
		if p.Slowest {
			fmt.Println(p.Role, "slowest phase:", p.Phase, "over", p.Durations.Count, "migrations")
		}
	}
	// Output:
	// source slowest phase: RamPushPrePause over 10 migrations
	// destination slowest phase: RamPushPrePause over 10 migrations
}

func ExampleSelect() {
	all := append([]model.Side{reporttest.SeedSource(), reporttest.SeedDestination()}, reporttest.Fleet(2, 3)...)
	ms, err := report.Select(all, report.Selection{MigrationID: reporttest.SeedMigrationID, Role: schema.RoleDestination})
	fmt.Println(len(ms), ms[0].Role, err)
	_, err = report.Select(all, report.Selection{MigrationID: "nope"})
	fmt.Println(err)
	// Output:
	// 1 destination <nil>
	// migration not found: "nope" (the input has 5eed0359-0000-4000-8000-000000000359, 00000003-0000-4000-8000-000000000000, 00000003-0000-4000-8000-000000000001)
}
