package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// The foundation SDK has no Jaeger query type, so jaegerQuery is the
// Grafana Jaeger datasource's query model: queryType "search" lists
// traces; an empty queryType with Query set shows one trace by ID.
type jaegerQuery struct {
	RefID      string                `json:"refId"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	QueryType  string                `json:"queryType,omitempty"`
	Service    string                `json:"service,omitempty"`
	Operation  string                `json:"operation,omitempty"`
	Tags       string                `json:"tags,omitempty"`
	Limit      int                   `json:"limit,omitempty"`
	Query      string                `json:"query,omitempty"`
}

// jaegerQueryTypeSearch is the Jaeger datasource's query type for a
// trace search (service, operation, tags).
const jaegerQueryTypeSearch = "search"

var (
	_ variants.Dataquery              = jaegerQuery{}
	_ cog.Builder[variants.Dataquery] = jaegerQuery{}
)

func (jaegerQuery) ImplementsDataqueryVariant() {}

func (jaegerQuery) DataqueryType() string { return jaegerType }

func (q jaegerQuery) Validate() error { return nil }

func (q jaegerQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(jaegerQuery)
	if !ok {
		return false
	}
	sameDS := (q.Datasource == nil) == (o.Datasource == nil)
	if sameDS && q.Datasource != nil {
		sameDS = deref(q.Datasource.Type) == deref(o.Datasource.Type) && deref(q.Datasource.Uid) == deref(o.Datasource.Uid)
	}
	return sameDS && q.RefID == o.RefID && q.QueryType == o.QueryType && q.Service == o.Service &&
		q.Operation == o.Operation && q.Tags == o.Tags && q.Limit == o.Limit && q.Query == o.Query
}

// Build makes a jaegerQuery its own builder: it is a plain value.
func (q jaegerQuery) Build() (variants.Dataquery, error) { return q, nil }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
