// Command timelinegen draws the README's example timeline
// (docs/timeline-example.svg) from the committed trace of a real
// migration. `make generate` runs it through the go:generate line in
// report/render/timeline_svg.go; render's tests fail when the committed
// picture and what this draws differ.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/report/timeline"
)

func main() {
	out := flag.String("o", "", "write the SVG to `FILE`")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: timelinegen -o FILE TRACE...")
		os.Exit(2)
	}
	if err := generate(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "timelinegen:", err)
		os.Exit(1)
	}
}

func generate(out string, traces []string) error {
	r := otlpread.New()
	for _, t := range traces {
		if err := r.ReadFile(context.Background(), t); err != nil {
			return err
		}
	}
	ms, err := r.Migrations()
	if err != nil {
		return err
	}
	tls, err := timeline.Build(ms)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := render.TimelineSVG(&b, tls); err != nil {
		return err
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}
