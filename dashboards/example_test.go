package dashboards_test

import (
	"fmt"
	"log"

	"github.com/migtrace/migtrace/dashboards"
)

func ExampleGenerate() {
	files, err := dashboards.Generate()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range files {
		fmt.Println(f.Path)
	}
	// Output:
	// migtrace-migrations.json
	// migtrace-traces.json
	// provisioning/datasources/migtrace.yaml
	// provisioning/dashboards/migtrace.yaml
}

func ExamplePrometheusQueries() {
	dashboard := []byte(`{"title": "Demo", "panels": [{"title": "Scrapes",
		"targets": [{"refId": "A", "datasource": {"type": "prometheus"}, "expr": "sum(up)"}]}]}`)
	queries, err := dashboards.PrometheusQueries(dashboard)
	if err != nil {
		log.Fatal(err)
	}
	for _, q := range queries {
		fmt.Printf("%s: %s\n", q.Where(), q.Expr)
	}
	// Output:
	// dashboard "Demo", panel "Scrapes", query A: sum(up)
}
