package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// TestDashboardsDecodeStrictly reads each generated panel back with the
// SDK's strict decoder, which rejects unknown fields and missing required
// ones (Grafana's schema), and requires the dashboard to survive a decode
// and re-encode byte for byte.
func TestDashboardsDecodeStrictly(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	cog.NewRuntime().RegisterDataqueryVariant(variants.DataqueryConfig{
		Identifier: jaegerType,
		DataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			var q jaegerQuery
			err := json.Unmarshal(raw, &q)
			return q, err
		},
		StrictDataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			var q jaegerQuery
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			err := dec.Decode(&q)
			return q, err
		},
	})
	files, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Ext(f.Path) != ".json" {
			continue
		}
		// The SDK's strict decoder drops panels when it decodes a whole
		// dashboard, so panels are decoded strictly one by one, and the
		// dashboard as a whole by the ordinary decoder.
		var raw struct {
			Panels []json.RawMessage `json:"panels"`
		}
		if err := json.Unmarshal(f.Data, &raw); err != nil {
			t.Fatal(err)
		}
		for i, p := range raw.Panels {
			var kind struct {
				Type string `json:"type"`
			}
			if err := json.Unmarshal(p, &kind); err != nil {
				t.Fatal(err)
			}
			var err error
			if kind.Type == "row" {
				err = new(dashboard.RowPanel).UnmarshalJSONStrict(p)
			} else {
				err = new(dashboard.Panel).UnmarshalJSONStrict(p)
			}
			if err != nil && !isEmptyBuildErrors(err) {
				t.Errorf("%s: panel %d (%s): strict decode: %v", f.Path, i, kind.Type, err)
			}
		}
		var d dashboard.Dashboard
		if err := json.Unmarshal(f.Data, &d); err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		if err := d.Validate(); err != nil {
			t.Errorf("%s: %v", f.Path, err)
		}
		again, err := marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, f.Data) {
			t.Errorf("%s: decoding and re-encoding changes it", f.Path)
		}
	}
}

func isEmptyBuildErrors(err error) bool {
	var be cog.BuildErrors
	return errors.As(err, &be) && len(be) == 0
}
