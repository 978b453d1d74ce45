package otlpread_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/tracing/schema"
)

// migrateTrace is a trace that package migrate wrote itself, through the
// OTel SDK and the file exporter, for a 16 MiB simulated guest (refresh it
// with `go test ./migrate -run TestTraceDecodesToWhatMigrateReturned
// -update`; that test also proves it decodes to what migrate returned).
var migrateTrace = filepath.Join("testdata", "migrate-sim.jsonl")

func TestReadsWhatMigrateWrote(t *testing.T) {
	r := otlpread.New()
	if err := r.ReadFile(context.Background(), migrateTrace); err != nil {
		t.Fatal(err)
	}
	ms, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].ID != ms[1].ID {
		t.Fatalf("read %d sides, want both sides of one migration", len(ms))
	}
	for _, m := range ms {
		want := 0
		for _, p := range schema.Phases {
			if p.Runs(m.Role) {
				want++
			}
		}
		if len(m.Phases) != want || m.Result != schema.ResultSuccess || m.ReportedByPeer {
			t.Errorf("%s: %d phases (want %d), result %q, reported by peer %v", m.Role, len(m.Phases), want, m.Result, m.ReportedByPeer)
		}
		if m.Instance == "" || m.Peer == "" || m.PeerName == "" || m.BytesSent == 0 || m.BytesReceived == 0 || m.ProtocolVersion == 0 {
			t.Errorf("%s: identity or stream counts missing: %+v", m.Role, m)
		}
		if m.TraceID == "" || m.StartTime.IsZero() || !m.EndTime.After(m.StartTime) {
			t.Errorf("%s: trace %q, start %v, end %v", m.Role, m.TraceID, m.StartTime, m.EndTime)
		}
	}
	// A real migration's trace holds the evidence for every rule.
	res := report.CheckMigration(ms, report.Options{})
	if !res.OK() || len(res.NotVerified) != 0 || len(res.Findings) != 0 {
		t.Errorf("report check: findings %+v, not verified %+v", res.Findings, res.NotVerified)
	}
	src, dst := ms[0], ms[1]
	if src.Role != schema.RoleSource {
		src, dst = dst, src
	}
	if src.DowntimeNs <= 0 || len(src.PrecopyRounds) == 0 {
		t.Errorf("source: downtime %d, %d rounds", src.DowntimeNs, len(src.PrecopyRounds))
	}
	if !dst.HasTimeData() || !dst.ClockOffset.Known() || dst.Blackout == nil || dst.Blackout.ErrorNs == nil ||
		!dst.Verified() || len(dst.SourcePhases) != len(src.Phases)-1 || // all but Finish, which was running
		dst.SourceDowntimeNs <= 0 {
		t.Errorf("destination incomplete: %+v", dst)
	}
}

// TestReadsWhatAFailedMigrationWrote: a real migration that failed in
// TimeData fails the check naming the phase, and with failures allowed
// passes, every rule its failure left without evidence not verified.
func TestReadsWhatAFailedMigrationWrote(t *testing.T) {
	r := otlpread.New()
	if err := r.ReadFile(context.Background(), filepath.Join("testdata", "migrate-sim-failed.jsonl")); err != nil {
		t.Fatal(err)
	}
	ms, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	res := report.CheckMigration(ms, report.Options{})
	if res.OK() {
		t.Fatalf("a failed migration passed: %+v", res)
	}
	for _, f := range res.Problems() {
		if f.Rule != report.RuleResult || !strings.Contains(f.Got, "TimeData") {
			t.Errorf("finding %+v, want only the failure in TimeData", f)
		}
	}
	res = report.CheckMigration(ms, report.Options{AllowFailed: true})
	if !res.OK() || len(res.Verified) == 0 {
		t.Fatalf("failures allowed: %+v", res)
	}
	for _, u := range res.NotVerified {
		if !strings.Contains(u.Reason, "failed in TimeData") {
			t.Errorf("%s (side %d) not verified for another reason: %s", u.Rule, u.Side, u.Reason)
		}
	}
}
