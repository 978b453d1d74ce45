package main

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/report/render/chromiumtest"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/tracing/schema"
)

// wellFormedSVG fails unless doc is one well-formed XML document with an
// <svg> root, and returns its <text> contents joined by newlines.
func wellFormedSVG(t *testing.T, doc string) string {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	var b strings.Builder
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
			}
		case xml.CharData:
			b.Write(e)
			b.WriteByte('\n')
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return b.String()
}

func TestReportTimeline(t *testing.T) {
	trace := seedTrace(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "timeline.html")
	unwritable := filepath.Join(dir, "no-such-dir", "timeline.svg")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings of stdout
		stderr   []string // substrings of stderr
		wantFile string
	}{
		{"svg to stdout", []string{"report", "timeline", trace}, 0,
			[]string{`<?xml version="1.0" encoding="UTF-8"?>`, "Migration " + reporttest.SeedMigrationID, "RamPushPrePause"}, nil, ""},
		{"html to a file", []string{"report", "timeline", "-o", "html", "--output-file", out, trace}, 0,
			nil, []string{"wrote " + out}, out},
		{"from stdin, one migration", []string{"report", "timeline", "--migration", reporttest.SeedMigrationID, "-"}, 0,
			[]string{"<svg"}, nil, ""},
		{"bad -o", []string{"report", "timeline", "-o", "png", trace}, 2,
			nil, []string{`invalid argument "png"`, "want svg, html"}, ""},
		{"unwritable --output-file", []string{"report", "timeline", "--output-file", unwritable, trace}, 1,
			nil, []string{"--output-file " + unwritable + ": no such file or directory"}, ""},
		{"no input", []string{"report", "timeline"}, 2, nil, []string{"no input"}, ""},
		{"unknown migration", []string{"report", "timeline", "--migration", "nope", trace}, 1,
			nil, []string{"migration not found", reporttest.SeedMigrationID}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdin io.Reader
			if slices.Contains(tt.args, "-") {
				f, err := os.Open(trace)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				stdin = f
			}
			stdout, stderr, code := runReport(t, stdin, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", code, tt.code, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q", w)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if tt.code == 0 && strings.HasPrefix(stdout, "<?xml") {
				text := wellFormedSVG(t, stdout)
				for _, p := range reporttest.SeedPhases() {
					if !strings.Contains(text, p.Phase.String()+"\n") {
						t.Errorf("picture has no %s label", p.Phase)
					}
				}
			}
			if tt.code != 0 && stdout != "" {
				t.Errorf("stdout on failure: %q", stdout)
			}
			if tt.wantFile != "" {
				b, err := os.ReadFile(tt.wantFile)
				if err != nil || !strings.HasPrefix(string(b), "<!DOCTYPE html>") {
					t.Errorf("%s: %v, %.40q", tt.wantFile, err, b)
				}
			}
		})
	}
	if _, err := os.Stat(unwritable); err == nil {
		t.Error("a file was written where it could not be")
	}
}

// TestReportTimelineOfDemo is the newcomer's path: a real migration by
// `migtrace demo`, then one `report timeline` command, then the page in
// Chromium with the network off: it loads without a console message,
// every phase either side ran is labelled in the picture, the tables are
// there, and no text of the picture overlaps another or leaves it.
func TestReportTimelineOfDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a migration")
	}
	chromiumtest.Binary(t)
	dir := t.TempDir()
	trace := filepath.Join(dir, "demo.jsonl")
	if out, errOut, code := run(t, "demo", "--memory", "16MiB", "--dirty-rate", "4MiB", "--warmup", "50ms", "--trace-file", trace); code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	page := filepath.Join(dir, "timeline.html")
	if _, errOut, code := run(t, "report", "timeline", "-o", "html", "--output-file", page, trace); code != 0 {
		t.Fatalf("report timeline: exit %d\n%s", code, errOut)
	}
	svg, errOut, code := run(t, "report", "timeline", trace)
	if code != 0 {
		t.Fatalf("report timeline -o svg: exit %d\n%s", code, errOut)
	}
	wellFormedSVG(t, svg)

	dom, log := chromiumtest.DumpDOM(t, page, 1100, 1000)
	if errs := chromiumtest.ConsoleErrors(log); len(errs) > 0 {
		t.Errorf("console:\n%s", strings.Join(errs, "\n"))
	}
	labels := map[string]bool{}
	for _, m := range regexp.MustCompile(`<text[^>]*>([^<]*)</text>`).FindAllStringSubmatch(dom, -1) {
		labels[m[1]] = true
	}
	// The demo's source runs every phase, its destination all but Pause.
	for _, p := range schema.Phases {
		if !labels[p.String()] {
			t.Errorf("the loaded picture has no %s label", p)
		}
	}
	for _, want := range []string{"guest blackout", "downtime", "pages sent", "Kernel", "TIME ELAPSED (usec)", "GUEST TSC", "OK migration"} {
		if !labels[want] && !strings.Contains(dom, want) {
			t.Errorf("the loaded page lacks %q", want)
		}
	}
	for _, size := range []struct {
		name string
		w, h int
	}{{"demo-timeline-desktop.png", 1100, 1400}, {"demo-timeline-narrow.png", 480, 1400}} {
		if _, log := chromiumtest.Screenshot(t, page, size.w, size.h, size.name); len(chromiumtest.ConsoleErrors(log)) > 0 {
			t.Errorf("%s: console:\n%s", size.name, strings.Join(chromiumtest.ConsoleErrors(log), "\n"))
		}
	}
	for _, p := range chromiumtest.MeasureSVG(t, []byte(svg)).Problems(1) {
		t.Error(p)
	}
}
