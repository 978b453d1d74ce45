package dashboards

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/tracing/schema"
)

// cancelMigration starts a migration from to to, capped so that it
// crawls, and cancels it at the destination in its pre-copy; both sides
// must then record it cancelled.
func cancelMigration(t *testing.T, migtrace, from, to string) {
	t.Helper()
	r := servertest.Migrate(t, migtrace, from, to, "--detach", "--max-bandwidth", "1MiB")
	if r.Code != 0 {
		t.Fatalf("migrate --detach: %s", r)
	}
	id := strings.TrimSpace(r.Stdout)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dst, src := server.NewClient(to, nil, false), server.NewClient(from, nil, false)
	if _, err := servertest.Await(ctx, dst, func(st server.InstanceStatus) bool {
		m := st.Migration
		return m != nil && m.ID == id && m.Progress != nil && m.Progress.Phase == schema.PhaseRamPushPrePause.String()
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Cancel(ctx, id, server.CancelRequest{By: "dashboards test"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*server.Client{src, dst} {
		st, err := servertest.WaitMigration(ctx, c, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Migration.Result != schema.ResultCancelled {
			t.Fatalf("%s: migration %s ended %s, want cancelled: %s", c.Addr(), id, st.Migration.Result, st.Migration.Error)
		}
	}
}

// TestPanelsAgainstPrometheus evaluates every Prometheus expression of
// every dashboard through a real Prometheus that scraped a real pair of
// `migtrace serve` processes through successful and failed migrations,
// and requires each to return data.
func TestPanelsAgainstPrometheus(t *testing.T) {
	t.Parallel()
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("prometheus is not installed (Debian package prometheus; make test installs it): %v", err)
		}
		t.Skip("prometheus is not installed (Debian package prometheus; make test installs it)")
	}
	start := time.Now()
	dir := t.TempDir()
	migtrace := servertest.Binary(t)

	// --auto-converge arms the throttle gauge on each source, at 0 here
	// where the guests never outpace loopback.
	a := servertest.Start(t, migtrace, servertest.Options{Name: "a", Args: []string{"--boot", "--memory", "32MiB", "--dirty-rate", "8MiB", "--auto-converge"}}).Addr()
	b := servertest.Start(t, migtrace, servertest.Options{Name: "b", Args: []string{"--memory", "32MiB", "--auto-converge"}}).Addr()
	prom := startPrometheus(t, promBin, dir, a, b)
	t.Logf("servers and Prometheus up after %v", time.Since(start).Round(time.Millisecond))

	// Every role on every server migrates twice, so that rates over the
	// window see an increase, not just the sample that created a series;
	// two failures likewise give the failure series an increase. B has no
	// VM at the end: asking it to pull from itself fails in Sync.
	steps := []struct {
		from, to string
		fail     bool
	}{
		{a, b, false}, {b, a, false}, {a, b, false}, {b, a, false},
		{b, b, true}, {b, b, true},
	}
	for i, s := range steps {
		before := time.Now()
		if r := servertest.Migrate(t, migtrace, s.from, s.to); s.fail != (r.Code != 0) {
			t.Fatalf("migration %d (%s → %s, want failure %v): %s", i+1, s.from, s.to, s.fail, r)
		}
		prom.waitForScrapes(t, before)
	}
	// Two cancellations, from the destination's API in the capped
	// pre-copy, give the cancelled series an increase too.
	for i := range 2 {
		before := time.Now()
		cancelMigration(t, migtrace, a, b)
		prom.waitForScrapes(t, before)
		t.Logf("cancellation %d scraped", i+1)
	}
	t.Logf("%d migrations scraped after %v", len(steps)+2, time.Since(start).Round(time.Millisecond))

	// Controls: the check must reject a query with no series and one
	// whose only sample is NaN, or passing it would prove nothing.
	for _, bad := range []Query{
		{Panel: "control: no series", RefID: "A", Instant: true, Expr: `absent(up) * 0`},
		{Panel: "control: NaN only", RefID: "A", Expr: `vector(0) / vector(0)`},
	} {
		if err := prom.check(bad, nil, start); err == nil {
			t.Errorf("%s: %s was accepted", bad.Panel, bad.Expr)
		}
	}

	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	evaluated := 0
	for _, f := range files {
		if filepath.Ext(f.Path) != ".json" {
			continue
		}
		queries, err := PrometheusQueries(f.Data)
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		allValues := variableAllValues(t, f)
		for _, q := range queries {
			if err := prom.check(q, allValues, start); err != nil {
				t.Errorf("%s: %s\n  expr: %s\n  %v", f.Path, q.Where(), q.Expr, err)
			}
			evaluated++
		}
	}
	if evaluated == 0 {
		t.Fatal("no Prometheus expressions in the dashboards")
	}
	t.Logf("%d Prometheus expressions returned data; %v in all", evaluated, time.Since(start).Round(time.Millisecond))
}

// variableAllValues maps each variable with an All option to the value
// Grafana substitutes for All.
func variableAllValues(t *testing.T, f File) map[string]string {
	t.Helper()
	var d struct {
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				IncludeAll bool   `json:"includeAll"`
				AllValue   string `json:"allValue"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("%s: %v", f.Path, err)
	}
	out := map[string]string{}
	for _, v := range d.Templating.List {
		if v.IncludeAll {
			out[v.Name] = v.AllValue
		}
	}
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	servertest.RemoveBinary()
	os.Exit(code)
}

// startProcess runs cmd until the test ends, then interrupts it; its
// stderr is logged if the test failed. It runs Prometheus, which is no
// serve process for servertest.Start.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) {
	t.Helper()
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, logs.String())
		}
	})
}

// waitHTTP polls url until it answers 200.
func waitHTTP(t *testing.T, what, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered at %s: %v", what, url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type promServer struct {
	base    string // http://HOST:PORT
	targets int
}

func startPrometheus(t *testing.T, bin, dir string, targets ...string) *promServer {
	t.Helper()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: migtrace
    static_configs:
      - targets: ['%s']
`, strings.Join(targets, "', '"))
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := servertest.FreeAddr(t)
	startProcess(t, "prometheus", exec.Command(bin,
		"--config.file="+configPath,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr,
		"--log.level=warn"))
	p := &promServer{base: "http://" + addr, targets: len(targets)}
	waitHTTP(t, "prometheus", p.base+"/-/ready")
	return p
}

// get calls a Prometheus API endpoint and decodes its envelope.
func (p *promServer) get(path string, params url.Values, data any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path+"?"+params.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: HTTP %s, undecodable body %q: %w", path, resp.Status, body, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: status %q: %s", path, env.Status, env.Error)
	}
	return json.Unmarshal(env.Data, data)
}

// waitForScrapes waits until every target is up and was scraped after
// since, so the metrics of whatever happened before since are stored.
func (p *promServer) waitForScrapes(t *testing.T, since time.Time) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var data struct {
			ActiveTargets []struct {
				ScrapeURL  string    `json:"scrapeUrl"`
				Health     string    `json:"health"`
				LastScrape time.Time `json:"lastScrape"`
				LastError  string    `json:"lastError"`
			} `json:"activeTargets"`
		}
		err := p.get("/api/v1/targets", url.Values{"state": {"active"}}, &data)
		fresh := 0
		for _, tg := range data.ActiveTargets {
			if tg.Health == "up" && tg.LastScrape.After(since) {
				fresh++
			} else if err == nil {
				err = fmt.Errorf("target %s: health %q, last scrape %v, error %q", tg.ScrapeURL, tg.Health, tg.LastScrape, tg.LastError)
			}
		}
		if fresh == p.targets && len(data.ActiveTargets) == p.targets {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for fresh scrapes of %d targets: %v", p.targets, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var labelValuesCall = regexp.MustCompile(`^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)

// check evaluates q as Grafana would and requires data: a variable query
// must list label values; a panel query must return at least one series
// with a finite sample (a quantile over empty buckets is NaN, no data).
func (p *promServer) check(q Query, allValues map[string]string, start time.Time) error {
	if q.Variable != "" {
		m := labelValuesCall.FindStringSubmatch(q.Expr)
		if m == nil {
			return errors.New("variable query is not label_values(METRIC, LABEL)")
		}
		var values []string
		if err := p.get("/api/v1/label/"+m[2]+"/values", url.Values{"match[]": {m[1]}}, &values); err != nil {
			return err
		}
		if len(values) == 0 {
			return errors.New("no label values")
		}
		return nil
	}
	expr, err := expandForPrometheus(q.Expr, allValues)
	if err != nil {
		return err
	}
	now := time.Now()
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Value  [2]any   `json:"value"`
			Values [][2]any `json:"values"`
		} `json:"result"`
	}
	if q.Instant {
		err = p.get("/api/v1/query", url.Values{"query": {expr}, "time": {unixTime(now)}}, &data)
	} else {
		err = p.get("/api/v1/query_range", url.Values{"query": {expr},
			"start": {unixTime(start)}, "end": {unixTime(now)}, "step": {"1"}}, &data)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", expr, err)
	}
	if len(data.Result) == 0 {
		return fmt.Errorf("%s: empty result", expr)
	}
	for _, series := range data.Result {
		samples := series.Values
		if q.Instant {
			samples = [][2]any{series.Value}
		}
		for _, s := range samples {
			if v, ok := s[1].(string); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("%s: %d series, no finite sample", expr, len(data.Result))
}

func unixTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}
