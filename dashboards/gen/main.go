// Command gen writes migtrace's Grafana dashboards and provisioning files.
// `make generate` runs it through the go:generate line in package
// dashboards; dashboards' tests fail when its output and the committed
// files differ.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/migtrace/migtrace/dashboards"
)

func main() {
	dir := flag.String("dir", ".", "the dashboards `directory` to write into")
	flag.Parse()
	files, err := dashboards.Generate()
	if err == nil {
		err = dashboards.Write(*dir, files)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
