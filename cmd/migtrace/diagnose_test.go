package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/tracingtest"
)

var updateDiagnoseTraces = flag.Bool("update-diagnose-traces", false,
	"rewrite report/testdata/diagnose/*.jsonl from fresh capped migrations between serve processes")

// diagnosisJSON is one object of `report diagnose -o json`.
type diagnosisJSON struct {
	Migration     string             `json:"migration"`
	Role          string             `json:"role"`
	Result        string             `json:"result"`
	TotalNs       int64              `json:"total_ns"`
	DowntimeNs    int64              `json:"downtime_ns"`
	BlackoutNs    int64              `json:"blackout_ns"`
	Cause         string             `json:"cause"`
	Why           string             `json:"why"`
	DowntimeCause string             `json:"downtime_cause"`
	Evidence      map[string]float64 `json:"evidence"`
	Suggestion    string             `json:"suggestion"`
	NotRecorded   []string           `json:"not_recorded"`
}

func diagnoseJSON(t *testing.T, args ...string) []diagnosisJSON {
	t.Helper()
	out, errOut, code := runReport(t, nil, append([]string{"report", "diagnose", "-o", "json"}, args...)...)
	if code != 0 {
		t.Fatalf("report diagnose %v: exit %d\n%s", args, code, errOut)
	}
	var ds []diagnosisJSON
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	for _, o := range raw {
		for _, k := range []string{"migration", "role", "result", "total_ns", "downtime_ns", "blackout_ns", "cause", "downtime_cause", "evidence", "suggestion"} {
			if _, ok := o[k]; !ok {
				t.Errorf("diagnosis lacks key %q: %v", k, o)
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

// The recorded loopback migration reads as healthy in both formats, and
// settings given on the command line join the evidence.
func TestReportDiagnose(t *testing.T) {
	path := realTrace(t, "migrate-sim.jsonl")
	out, errOut, code := runReport(t, nil, "report", "diagnose", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"migration 31812dc9-a760-4236-9623-9f108b936503: success", "total 28.5ms: healthy:",
		"blackout 2.6ms (downtime 2.6ms): healthy:", "change: Nothing to change", "not recorded: max bandwidth, downtime target, max rounds"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	ds := diagnoseJSON(t, path)
	if len(ds) != 1 || ds[0].Cause != "healthy" || ds[0].DowntimeCause != "healthy" || ds[0].Role != "destination" || ds[0].Result != "success" {
		t.Fatalf("diagnoses %+v", ds)
	}

	ds = diagnoseJSON(t, "--max-bandwidth", "8MiB", "--downtime-target", "10ms", "--max-rounds", "5", path)
	ev := ds[0].Evidence
	if ev["max_bandwidth_bytes_per_sec"] != 8<<20 || ev["downtime_target_ns"] != 10e6 || ev["max_rounds"] != 5 || len(ds[0].NotRecorded) != 0 {
		t.Errorf("given settings: evidence %v, not recorded %v", ev, ds[0].NotRecorded)
	}
	// The 4.5 ms blackout met the 10 ms target.
	if ds[0].DowntimeCause != "healthy" {
		t.Errorf("downtime cause %s with the target met", ds[0].DowntimeCause)
	}
}

// committedTrace is a trace in report/testdata/diagnose, which
// TestReportDiagnoseCappedMigrations regenerates.
func committedTrace(name string) string {
	return filepath.Join("..", "..", "report", "testdata", "diagnose", name)
}

// The capped migrations recorded between real serve processes: one
// converging at the cap (link-bound), one whose guest dirties memory
// faster than the cap sends it (non-converging).
func TestReportDiagnoseCommittedTraces(t *testing.T) {
	for _, tt := range []struct {
		file, cause, pause string
	}{
		{"link-bound.jsonl", "link-bound", "link-bound"},
		{"non-converging.jsonl", "non-converging", "non-converging"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			ds := diagnoseJSON(t, committedTrace(tt.file))
			if len(ds) != 1 || ds[0].Cause != tt.cause || ds[0].DowntimeCause != tt.pause {
				t.Fatalf("diagnoses %+v, want %s / %s", ds, tt.cause, tt.pause)
			}
		})
	}
}

// TestReportDiagnoseCappedMigrations migrates between two `migtrace
// serve` processes capped by --max-bandwidth and checks the cause
// diagnose finds in their traces. With -update-diagnose-traces it keeps
// the traces in report/testdata/diagnose.
func TestReportDiagnoseCappedMigrations(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and migrates for seconds")
	}
	const capRate = 8 << 20 // --max-bandwidth 8MiB
	for _, tt := range []struct {
		name     string
		src, dst []string
		warmup   time.Duration
		check    func(t *testing.T, d diagnosisJSON)
	}{
		{
			// 4 MiB/s of writes for 3 s leaves about half the 16 MiB
			// non-zero; the pre-copy converges at the cap.
			name:   "link-bound",
			src:    []string{"--memory", "16MiB", "--dirty-rate", "4MiB"},
			dst:    []string{"--memory", "16MiB"},
			warmup: 3 * time.Second,
			check: func(t *testing.T, d diagnosisJSON) {
				if d.Cause != "link-bound" || d.Evidence["last_round_dirty_ratio"] >= 0.9 {
					t.Errorf("cause %s (%s), evidence %v", d.Cause, d.Why, d.Evidence)
				}
				// The wire ran at the cap, within the token bucket's burst.
				if r := d.Evidence["link_bytes_per_sec"]; r < 0.8*capRate || r > 1.2*capRate {
					t.Errorf("link rate %v, want about %d", r, capRate)
				}
			},
		},
		{
			// 32 MiB/s of writes on 8 MiB against an 8 MiB/s cap: every
			// round re-dirties what it sent, until --max-rounds.
			name:   "non-converging",
			src:    []string{"--memory", "8MiB", "--dirty-rate", "32MiB", "--max-rounds", "3"},
			dst:    []string{"--memory", "8MiB"},
			warmup: 500 * time.Millisecond,
			check: func(t *testing.T, d diagnosisJSON) {
				if d.Cause != "non-converging" || d.DowntimeCause != "non-converging" ||
					d.Evidence["precopy_rounds"] != 3 || d.Evidence["last_round_dirty_ratio"] < 0.9 {
					t.Errorf("cause %s / %s (%s), evidence %v", d.Cause, d.DowntimeCause, d.Why, d.Evidence)
				}
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			srcTrace, dstTrace := filepath.Join(dir, "src.jsonl"), filepath.Join(dir, "dst.jsonl")
			bin := servertest.Binary(t)
			capArgs := []string{"--max-bandwidth", "8MiB", "--log-level", "warn"}
			src := servertest.Start(t, bin, servertest.Options{Name: "src-" + tt.name,
				Args: append(append([]string{"--boot", "--trace-file", srcTrace}, tt.src...), capArgs...)})
			dst := servertest.Start(t, bin, servertest.Options{Name: "dst-" + tt.name,
				Args: append(append([]string{"--trace-file", dstTrace}, tt.dst...), capArgs...)})
			time.Sleep(tt.warmup) // the guest dirties memory
			if mig := servertest.Migrate(t, bin, src.Addr(), dst.Addr()); mig.Code != 0 {
				t.Fatalf("migrate: %s", mig)
			}
			// Stopping the servers flushes their traces.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for _, p := range []*servertest.Proc{src, dst} {
				if err := p.Stop(ctx); err != nil {
					t.Fatalf("stopping %s: %v", p, err)
				}
			}
			ds := diagnoseJSON(t, srcTrace, dstTrace)
			if len(ds) != 1 {
				t.Fatalf("%d diagnoses", len(ds))
			}
			tt.check(t, ds[0])
			// Given the cap, diagnose measures against it.
			capped := diagnoseJSON(t, "--max-bandwidth", "8MiB", srcTrace, dstTrace)[0]
			if capped.Cause != ds[0].Cause || capped.Evidence["max_bandwidth_bytes_per_sec"] != capRate {
				t.Errorf("with --max-bandwidth: cause %s, evidence %v", capped.Cause, capped.Evidence)
			}
			if tt.name == "link-bound" && capped.Evidence["link_utilisation_ratio"] < 0.8 {
				t.Errorf("utilisation of the cap %v", capped.Evidence["link_utilisation_ratio"])
			}
			if *updateDiagnoseTraces && !t.Failed() {
				var both []byte
				for _, p := range []string{srcTrace, dstTrace} {
					b, err := os.ReadFile(p)
					if err != nil {
						t.Fatal(err)
					}
					both = append(both, b...)
				}
				if err := os.WriteFile(committedTrace(tt.name+".jsonl"), both, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestReportDiagnoseAndSearchUsageErrors(t *testing.T) {
	path := realTrace(t, "migrate-sim.jsonl")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "diagnose", "--jaeger", "http://127.0.0.1:1"}, "--jaeger needs --trace-id ID, or --service NAME --since DURATION"},
		{[]string{"report", "phases", "--jaeger", "http://127.0.0.1:1"}, "--jaeger and --trace-id go together"},
		{[]string{"report", "diagnose", "--service", "migtrace", "--since", "1h"}, "give --jaeger URL too"},
		{[]string{"report", "summary", "--jaeger", "http://127.0.0.1:1", "--service", "migtrace"}, "--service needs --since DURATION"},
		{[]string{"report", "summary", "--jaeger", "http://127.0.0.1:1", "--service", "migtrace", "--since", "1h", "--trace-id", "ab"}, "give one of them"},
		{[]string{"report", "diagnose", "--since", "1h", path}, "--since and --limit go with --jaeger URL --service NAME"},
		{[]string{"report", "diagnose", "--limit", "0", path}, "--limit"},
		{[]string{"report", "summary", "--since", "-1h", path}, "--since"},
		{[]string{"report", "summary", "--group-by", "host", path}, "want host-pair"},
		{[]string{"report", "diagnose", "-o", "csv", path}, "want text, json"},
		{[]string{"report", "diagnose", "--max-rounds", "0", path}, "--max-rounds"},
		{[]string{"report", "diagnose", "--max-bandwidth", "fast", path}, "--max-bandwidth"},
		{[]string{"report", "phases", "--service", "migtrace", path}, "unknown flag: --service"},
		{[]string{"report", "diagnose"}, "no input"},
	} {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			_, errOut, code := runReport(t, nil, tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q; want %d mentioning %q", code, errOut, exitUsage, tt.want)
			}
		})
	}
}

// A Jaeger that cannot answer the search fails summary and diagnose with
// exit 1 and a message naming what went wrong.
func TestReportSearchJaegerErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()
	serve := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	notJSON := serve(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>jaeger</html>") })
	empty := serve(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"httpCode":404,"message":"No traces found"}}`)
	})
	for _, tt := range []struct {
		name, url string
		want      []string
	}{
		{"unreachable", refused, []string{"Jaeger unreachable: connection refused at " + refused}},
		{"bad JSON", notJSON, []string{"not valid OTLP JSON", "/api/v3/traces?"}},
		{"no traces in the window", empty, []string{`no traces found in Jaeger at ` + empty + ` for service "migtrace" from `}},
	} {
		for _, sub := range []string{"summary", "diagnose"} {
			t.Run(tt.name+"/"+sub, func(t *testing.T) {
				_, errOut, code := runReport(t, nil, "report", sub, "--jaeger", tt.url, "--service", "migtrace", "--since", "2h")
				if code != exitFailure {
					t.Fatalf("exit %d, want %d: %s", code, exitFailure, errOut)
				}
				for _, w := range tt.want {
					if !strings.Contains(errOut, w) {
						t.Errorf("stderr %q lacks %q", errOut, w)
					}
				}
			})
		}
	}
}

// A search that returns --limit traces may have missed older ones: the
// command says so on stderr and still reports what it read.
func TestReportSearchNotesTheLimit(t *testing.T) {
	src, dst := reporttest.SeedSource(), reporttest.SeedDestination()
	td := reporttest.Traces(src, dst)
	b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Query().Get("query.num_traces")
		fmt.Fprintf(w, `{"result":%s}`, b)
	}))
	defer srv.Close()
	out, errOut, code := runReport(t, nil, "report", "summary", "--jaeger", srv.URL, "--service", "migtrace", "--since", "24h", "--limit", "1")
	if code != 0 || got != "1" {
		t.Fatalf("exit %d, num_traces %q: %s", code, got, errOut)
	}
	if !strings.Contains(errOut, "note: Jaeger returned 1 traces, the --limit") || !strings.Contains(out, "1 migrations (2 sides, 0 failed)") {
		t.Errorf("stdout %q\nstderr %q", out, errOut)
	}
}

// fleetAt returns n migrations ending before now, between host pairs
// (host-a → host-b, then host-c → host-b), each with the pre-copy round
// its source records, rebased onto the wall clock so that a search of the
// last hour finds them.
func fleetAt(n int, now time.Time) []model.Side {
	fleet := reporttest.Fleet(n, 21)
	base := fleet[0].StartTime
	start := now.Add(-time.Duration(n+1) * time.Minute)
	for i := range fleet {
		m := &fleet[i]
		d := start.Sub(base)
		m.StartTime, m.EndTime = m.StartTime.Add(d), m.EndTime.Add(d)
		for j := range m.Phases {
			m.Phases[j].Start, m.Phases[j].End = m.Phases[j].Start.Add(d), m.Phases[j].End.Add(d)
		}
		srcName := "host-a"
		if i/2 == n-1 {
			srcName = "host-c"
		}
		if m.Role == schema.RoleSource {
			m.Instance, m.PeerName = srcName, "host-b"
			pre, _ := m.Phase(schema.PhaseRamPushPrePause)
			post, _ := m.Phase(schema.PhaseRamPushPostPause)
			m.PrecopyRounds = []model.PrecopyRound{{Phase: schema.PhaseRamPushPrePause, Pages: pre.Pages, ZeroPages: pre.ZeroPages,
				Bytes: pre.Bytes, WireBytes: pre.Bytes, DirtyPages: post.Pages, RoundNs: pre.DurationNs()}}
		} else {
			m.Instance, m.PeerName = "host-b", srcName
		}
	}
	return fleet
}

// Migrations exported to a real Jaeger over OTLP/HTTP come back through
// its trace search: summary counts them per host pair, and diagnose finds
// for each what it finds in the same migrations read directly.
func TestReportFleetFromJaeger(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Jaeger")
	}
	otlp, query := tracingtest.StartJaeger(t)
	const n = 4
	fleet := fleetAt(n, time.Now())
	for _, m := range fleet {
		b, err := (&ptrace.JSONMarshaler{}).MarshalTraces(reporttest.Traces(m))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(otlp+"/v1/traces", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("OTLP export: %s", resp.Status)
		}
	}
	search := []string{"--jaeger", query, "--service", "migtrace", "--since", "1h"}

	// Jaeger stores spans asynchronously: wait until the search sees all.
	var sum struct {
		Migrations, Sides int
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, code := runReport(t, nil, append([]string{"report", "summary", "-o", "json"}, search...)...)
		if code == 0 && json.Unmarshal([]byte(out), &sum) == nil && sum.Sides == 2*n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Jaeger's search never held the %d sides: exit %d, %+v\n%s", 2*n, code, sum, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if sum.Migrations != n {
		t.Errorf("%d migrations, want %d", sum.Migrations, n)
	}

	out, errOut, code := runReport(t, nil, append([]string{"report", "summary", "--group-by", "host-pair", "-o", "json"}, search...)...)
	var pairs []struct {
		Source, Destination string
		Migrations          int
	}
	if code != 0 || json.Unmarshal([]byte(out), &pairs) != nil {
		t.Fatalf("summary --group-by host-pair: exit %d\n%s\n%s", code, out, errOut)
	}
	want := []struct {
		src string
		n   int
	}{{"host-a", n - 1}, {"host-c", 1}}
	if len(pairs) != len(want) {
		t.Fatalf("pairs %+v", pairs)
	}
	for i, w := range want {
		if pairs[i].Source != w.src || pairs[i].Destination != "host-b" || pairs[i].Migrations != w.n {
			t.Errorf("pair %d = %+v, want %s → host-b with %d", i, pairs[i], w.src, w.n)
		}
	}

	got := diagnoseJSON(t, search...)
	direct := report.Diagnose(fleet, report.DiagnoseOptions{})
	if len(got) != n || len(direct) != n {
		t.Fatalf("%d diagnoses through Jaeger, %d directly; want %d", len(got), len(direct), n)
	}
	byID := map[string]report.Diagnosis{}
	for _, d := range direct {
		byID[d.MigrationID] = d
	}
	for _, g := range got {
		d, ok := byID[g.Migration]
		if !ok {
			t.Errorf("Jaeger returned migration %s, not in the fleet", g.Migration)
			continue
		}
		if g.Cause != string(d.Cause) || g.DowntimeCause != string(d.DowntimeCause) || g.TotalNs != d.TotalNs || g.BlackoutNs != d.BlackoutNs {
			t.Errorf("migration %s through Jaeger: %s / %s, total %d, blackout %d; read directly: %s / %s, %d, %d",
				g.Migration, g.Cause, g.DowntimeCause, g.TotalNs, g.BlackoutNs, d.Cause, d.DowntimeCause, d.TotalNs, d.BlackoutNs)
		}
	}
}
