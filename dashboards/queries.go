package dashboards

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNoExpr reports a Prometheus target without an expression.
var ErrNoExpr = errors.New("prometheus target has no expr")

// Query is one Prometheus expression in a dashboard: a panel target, or
// the query of a template variable (then Variable names it and Panel is
// empty).
type Query struct {
	Dashboard string // the dashboard's title
	Panel     string // the panel's title
	Variable  string // the template variable's name
	RefID     string
	Expr      string // as in the JSON, Grafana macros and variables unexpanded
	Instant   bool
}

// Where names the query for messages: dashboard, panel or variable, refId.
func (q Query) Where() string {
	if q.Variable != "" {
		return fmt.Sprintf("dashboard %q, variable %q", q.Dashboard, q.Variable)
	}
	return fmt.Sprintf("dashboard %q, panel %q, query %s", q.Dashboard, q.Panel, q.RefID)
}

type dsRef struct {
	Type string `json:"type"`
}

type jsonTarget struct {
	RefID      string `json:"refId"`
	Datasource *dsRef `json:"datasource"`
	Expr       string `json:"expr"`
	Instant    bool   `json:"instant"`
}

type jsonPanel struct {
	Type       string       `json:"type"`
	Title      string       `json:"title"`
	Datasource *dsRef       `json:"datasource"`
	Targets    []jsonTarget `json:"targets"`
	Panels     []jsonPanel  `json:"panels"` // a collapsed row's panels
}

type jsonDashboard struct {
	Title      string      `json:"title"`
	Panels     []jsonPanel `json:"panels"`
	Templating struct {
		List []struct {
			Type       string `json:"type"`
			Name       string `json:"name"`
			Datasource *dsRef `json:"datasource"`
			Query      any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// PrometheusQueries returns every Prometheus expression of the dashboard
// JSON in data: each panel target whose datasource (its own, else its
// panel's) is of type prometheus, and each Prometheus query variable.
func PrometheusQueries(data []byte) ([]Query, error) {
	var d jsonDashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("decoding dashboard JSON: %w", err)
	}
	var (
		out  []Query
		errs []error
		walk func([]jsonPanel)
	)
	walk = func(panels []jsonPanel) {
		for _, p := range panels {
			for i, t := range p.Targets {
				ds := t.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				if ds == nil || ds.Type != prometheusType {
					continue
				}
				q := Query{Dashboard: d.Title, Panel: p.Title, RefID: t.RefID, Expr: t.Expr, Instant: t.Instant}
				if q.RefID == "" {
					q.RefID = fmt.Sprintf("#%d", i)
				}
				if t.Expr == "" {
					errs = append(errs, fmt.Errorf("%s: %w", q.Where(), ErrNoExpr))
					continue
				}
				out = append(out, q)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" || v.Datasource == nil || v.Datasource.Type != prometheusType {
			continue
		}
		q := Query{Dashboard: d.Title, Variable: v.Name}
		switch query := v.Query.(type) {
		case string:
			q.Expr = query
		case map[string]any: // Grafana's newer form: {"query": "...", ...}
			q.Expr, _ = query["query"].(string)
		}
		if q.Expr == "" {
			errs = append(errs, fmt.Errorf("%s: %w", q.Where(), ErrNoExpr))
			continue
		}
		out = append(out, q)
	}
	return out, errors.Join(errs...)
}
