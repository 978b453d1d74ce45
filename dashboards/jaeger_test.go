package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/schema"
	"github.com/migtrace/migtrace/tracing/tracingtest"
)

// TestTracePanelsAgainstJaeger runs the traces dashboard's Jaeger queries
// the way Grafana's Jaeger datasource does, against a real Jaeger that
// received the traces of a real successful and a real failed migration:
// the search must find migrations with and without each result tag the
// migrations dashboard links with, and the trace panel must load a trace
// the search found.
func TestTracePanelsAgainstJaeger(t *testing.T) {
	t.Parallel()
	otlp, jaegerURL := tracingtest.StartJaeger(t)
	start := time.Now()
	migtrace := servertest.Binary(t)
	env := []string{tracing.EnvOTLPEndpoint + "=" + otlp, tracing.EnvOTLPProtocol + "=http/protobuf"}
	a := servertest.Start(t, migtrace, servertest.Options{Name: "a", Env: env, Args: []string{"--boot", "--memory", "16MiB"}}).Addr()
	b := servertest.Start(t, migtrace, servertest.Options{Name: "b", Env: env, Args: []string{"--memory", "16MiB"}}).Addr()
	for _, s := range []struct {
		from, to string
		fail     bool
	}{{a, b, false}, {a, a, true}} { // a has no VM left to pull from itself
		if r := servertest.Migrate(t, migtrace, s.from, s.to); s.fail != (r.Code != 0) {
			t.Fatalf("migrate %s → %s (want failure %v): %s", s.from, s.to, s.fail, r)
		}
	}

	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	searched := 0
	for _, f := range files {
		if filepath.Ext(f.Path) != ".json" {
			continue
		}
		search, byID := jaegerTargets(t, f)
		for _, q := range search {
			for _, tags := range []string{"", schema.AttrResult + "=" + schema.ResultSuccess, schema.AttrResult + "=" + schema.ResultFailure} {
				where := fmt.Sprintf("%s: panel %q with %s=%q", f.Path, q.panel, varTags, tags)
				traces := waitForSearch(t, jaegerURL, q.target, strings.ReplaceAll(q.target.Tags, varRef(varTags), tags), start, where)
				searched++
				for _, id := range traces {
					for _, tq := range byID {
						if tq.target.Query != varRef(varTraceID) {
							t.Fatalf("%s: panel %q queries %q, want the %s variable", f.Path, tq.panel, tq.target.Query, varTraceID)
						}
						var got jaegerResponse
						if err := getJaeger(jaegerURL+"/api/traces/"+url.PathEscape(id), nil, &got); err != nil || len(got.Data) != 1 || len(got.Data[0].Spans) == 0 {
							t.Errorf("%s: panel %q cannot load trace %s: %v %+v", f.Path, tq.panel, id, err, got)
						}
					}
				}
			}
		}
	}
	if searched == 0 {
		t.Fatal("no Jaeger search in the dashboards")
	}
	t.Logf("%d Jaeger searches returned migrations; %v", searched, time.Since(start).Round(time.Millisecond))
}

type panelJaegerQuery struct {
	panel  string
	target jaegerQuery
}

// jaegerTargets returns the dashboard's Jaeger searches and its by-id
// (trace panel) queries.
func jaegerTargets(t *testing.T, f File) (search, byID []panelJaegerQuery) {
	t.Helper()
	var d struct {
		Panels []struct {
			Title   string        `json:"title"`
			Targets []jaegerQuery `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("%s: %v", f.Path, err)
	}
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			if q.Datasource == nil || deref(q.Datasource.Type) != jaegerType {
				continue
			}
			if q.QueryType == jaegerQueryTypeSearch {
				search = append(search, panelJaegerQuery{p.Title, q})
			} else {
				byID = append(byID, panelJaegerQuery{p.Title, q})
			}
		}
	}
	return search, byID
}

// jaegerResponse is the part of Jaeger's /api/traces answer (the API
// Grafana's Jaeger datasource uses) that the test reads.
type jaegerResponse struct {
	Data []jaegerTrace `json:"data"`
}

type jaegerTrace struct {
	TraceID   string       `json:"traceID"`
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type jaegerSpan struct {
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	Tags          []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

// waitForSearch polls Jaeger's search API, as Grafana's Jaeger datasource
// calls it, until it finds traces matching q with logfmt tags, and
// checks each has a span of the searched operation, service and tags.
// Spans reach Jaeger in batches, so the first searches may come back empty.
func waitForSearch(t *testing.T, base string, q jaegerQuery, tags string, since time.Time, where string) []string {
	t.Helper()
	params := url.Values{
		"service":   {q.Service},
		"operation": {q.Operation},
		"limit":     {strconv.Itoa(q.Limit)},
		"start":     {strconv.FormatInt(since.Add(-time.Minute).UnixMicro(), 10)},
	}
	want := map[string]string{}
	if tags != "" {
		for _, kv := range strings.Fields(tags) {
			k, v, _ := strings.Cut(kv, "=")
			want[k] = v
		}
		js, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		params.Set("tags", string(js))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		params.Set("end", strconv.FormatInt(time.Now().UnixMicro(), 10))
		var got jaegerResponse
		err := getJaeger(base+"/api/traces", params, &got)
		if err == nil && len(got.Data) > 0 {
			var ids []string
			for _, tr := range got.Data {
				if !hasSpan(tr, q.Service, q.Operation, want) {
					t.Errorf("%s: trace %s has no %s span of service %s with tags %v", where, tr.TraceID, q.Operation, q.Service, want)
				}
				ids = append(ids, tr.TraceID)
			}
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: Jaeger search %v found nothing: %v", where, params, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func hasSpan(tr jaegerTrace, service, operation string, tags map[string]string) bool {
	for _, s := range tr.Spans {
		if s.OperationName != operation || tr.Processes[s.ProcessID].ServiceName != service {
			continue
		}
		matched := 0
		for _, tag := range s.Tags {
			if v, ok := tags[tag.Key]; ok && fmt.Sprint(tag.Value) == v {
				matched++
			}
		}
		if matched == len(tags) {
			return true
		}
	}
	return false
}

func getJaeger(u string, params url.Values, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if params != nil {
		u += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
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
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, body)
	}
	return json.Unmarshal(body, out)
}
