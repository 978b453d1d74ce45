package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

//go:generate go run ./gen -dir .

// Dashboard and datasource identities. The provisioning files give the
// datasources these uids; the dashboards only reach them through their
// datasource variables, so any Prometheus or Jaeger datasource works.
const (
	UIDMigrations           = "migtrace-migrations"
	UIDTraces               = "migtrace-traces"
	PrometheusDatasourceUID = "migtrace-prometheus"
	JaegerDatasourceUID     = "migtrace-jaeger"
	// FolderUID is the Grafana folder the provisioning puts them in.
	FolderUID = "migtrace"
)

// Grafana plugin ids of the datasources.
const (
	prometheusType = "prometheus"
	jaegerType     = "jaeger"
)

// Dashboard variable names.
const (
	varDatasource = "datasource"
	varJaeger     = "jaeger"
	varRole       = "role"
	varPhase      = "phase"
	varTags       = "tags"
	varTraceID    = "trace_id"
)

const dashboardTag = "migtrace"

// labelInstance is the label Prometheus adds to every scraped series.
const labelInstance = "instance"

type variantsDataquery = variants.Dataquery

// File is one generated file: Path is relative to the dashboards
// directory and uses forward slashes.
type File struct {
	Path string
	Data []byte
}

// Generate builds every dashboard and provisioning file. The output is
// deterministic: the same tree always yields the same bytes.
func Generate() ([]File, error) {
	n, err := resolveNames()
	if err != nil {
		return nil, err
	}
	var files []File
	for _, d := range []struct {
		file string
		b    *dashboard.DashboardBuilder
	}{
		{"migtrace-migrations.json", migrationsDashboard(n)},
		{"migtrace-traces.json", tracesDashboard()},
	} {
		built, err := d.b.Build()
		if err != nil {
			return nil, fmt.Errorf("building dashboard %s: %w", d.file, err)
		}
		// The SDK files every dashboard link under the controls menu,
		// which Grafana 12.3+ folds away; unset, links show in the header.
		for i := range built.Links {
			built.Links[i].Placement = nil
		}
		data, err := marshal(built)
		if err != nil {
			return nil, fmt.Errorf("encoding dashboard %s: %w", d.file, err)
		}
		files = append(files, File{Path: d.file, Data: data})
	}
	return append(files, provisioningFiles()...), nil
}

// Write writes files under dir, creating directories as needed.
func Write(dir string, files []File) error {
	var errs []error
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.WriteFile(path, f.Data, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// marshal indents like Grafana's own export and ends with a newline, so
// the committed files diff cleanly.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// panelIDs hands out unique panel ids within one dashboard.
type panelIDs uint32

func (p *panelIDs) next() uint32 {
	*p++
	return uint32(*p)
}

func datasourceRef(pluginType, variable string) common.DataSourceRef {
	uid := "${" + variable + "}"
	return common.DataSourceRef{Type: &pluginType, Uid: &uid}
}

// datasourceVariable lets the viewer pick any datasource of pluginType;
// panels refer to it as ${name}, so no uid is baked in.
func datasourceVariable(name, label, pluginType string) *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder(name).Label(label).Type(pluginType)
}

// labelVariable offers the values of label on metric, several at a time,
// with All matching everything.
func labelVariable(name, label, metric, promLabel string) *dashboard.QueryVariableBuilder {
	q := "label_values(" + metric + ", " + promLabel + ")"
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasourceRef(prometheusType, varDatasource)).
		Query(dashboard.StringOrMap{String: &q}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".*").
		Current(dashboard.VariableOption{
			Text:  dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		})
}
