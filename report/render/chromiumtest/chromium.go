package chromiumtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Binary is chromium's path; it skips tb when chromium is not installed.
func Binary(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	tb.Skip("chromium is not installed (make test-deps installs it)")
	return ""
}

// timeout bounds one page load: the machine is shared and slow at times.
const timeout = 2 * time.Minute

// run loads the local file at width×height with the extra flags and
// returns chromium's stdout and log.
func run(tb testing.TB, file string, width, height int, extra ...string) (stdout, log string) {
	tb.Helper()
	bin := Binary(tb)
	abs, err := filepath.Abs(file)
	if err != nil {
		tb.Fatal(err)
	}
	args := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-extensions", "--user-data-dir=" + tb.TempDir(),
		// No way out: a proxy nobody listens on, and no name resolves.
		"--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
		"--enable-logging=stderr", "--v=0",
		fmt.Sprintf("--window-size=%d,%d", width, height),
	}
	args = append(append(args, extra...), "file://"+abs)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 10 * time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		tb.Fatalf("chromium %s: %v\n%s", file, err, errb.String())
	}
	return out.String(), errb.String()
}

// consoleLine matches chromium's log of a console message (every level
// is logged as INFO:CONSOLE) or an uncaught exception.
var consoleLine = regexp.MustCompile(`:CONSOLE|Uncaught`)

// ConsoleErrors returns the console messages in a chromium log: a page
// that runs no script logs none unless something failed (a blocked load,
// a policy violation).
func ConsoleErrors(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if consoleLine.MatchString(l) {
			out = append(out, l)
		}
	}
	return out
}

// Screenshot loads file at width×height and writes its PNG to the test's
// temporary directory (and $MIGTRACE_SCREENSHOTS/name); it returns the
// PNG's path and chromium's log.
func Screenshot(tb testing.TB, file string, width, height int, name string) (png, log string) {
	tb.Helper()
	png = filepath.Join(tb.TempDir(), name)
	_, log = run(tb, file, width, height, "--hide-scrollbars", "--screenshot="+png)
	b, err := os.ReadFile(png)
	if err != nil {
		tb.Fatalf("no screenshot: %v\n%s", err, log)
	}
	// A PNG's signature, and more than an empty page's worth of it.
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 10000 {
		tb.Fatalf("screenshot %s is not a picture of the page (%d bytes)", png, len(b))
	}
	if dir := os.Getenv("MIGTRACE_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return png, log
}

// DumpDOM loads file and returns its DOM once loaded, and chromium's log.
func DumpDOM(tb testing.TB, file string, width, height int) (dom, log string) {
	tb.Helper()
	return run(tb, file, width, height, "--dump-dom")
}

// Text is one <text> element's laid-out box.
type Text struct {
	S              string
	X0, Y0, X1, Y1 float64
}

// Layout is what the browser measured of an SVG's text.
type Layout struct {
	Width, Height float64 // the viewBox
	Texts         []Text
}

// measure runs in the harness page: the boxes chromium laid out, in the
// SVG's own units.
const measure = `<script>
const svg = document.querySelector('svg');
const vb = svg.viewBox.baseVal;
const texts = [...svg.querySelectorAll('text')].map(t => {
  const b = t.getBBox();
  const m = t.getCTM(), r = svg.getCTM().inverse().multiply(m);
  return {S: t.textContent, X0: b.x + r.e, Y0: b.y + r.f, X1: b.x + b.width + r.e, Y1: b.y + b.height + r.f};
});
document.getElementById('layout').textContent = JSON.stringify({Width: vb.width, Height: vb.height, Texts: texts});
</script>`

// MeasureSVG lays out an SVG document in chromium and returns where
// each of its texts landed.
func MeasureSVG(tb testing.TB, svg []byte) Layout {
	tb.Helper()
	svg = bytes.TrimSpace(svg)
	if bytes.HasPrefix(svg, []byte("<?xml")) {
		svg = svg[bytes.IndexByte(svg, '\n')+1:]
	}
	page := "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body style=\"margin:0\">" +
		string(svg) + "<pre id=\"layout\"></pre>" + measure + "</body></html>"
	file := filepath.Join(tb.TempDir(), "measure.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		tb.Fatal(err)
	}
	dom, log := DumpDOM(tb, file, 1200, 1000)
	if errs := ConsoleErrors(log); len(errs) > 0 {
		tb.Fatalf("measuring page: %s", strings.Join(errs, "\n"))
	}
	i, j := strings.Index(dom, `<pre id="layout">`), strings.Index(dom, "</pre>")
	if i < 0 || j < i {
		tb.Fatalf("measuring page wrote no layout:\n%s", dom)
	}
	var l Layout
	raw := strings.NewReplacer("&quot;", `"`, "&amp;", "&", "&lt;", "<", "&gt;", ">").Replace(dom[i+len(`<pre id="layout">`) : j])
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		tb.Fatalf("layout %q: %v", raw, err)
	}
	return l
}

// Problems lists texts that stick out of the picture or overlap another
// by more than slack px each way.
func (l Layout) Problems(slack float64) []string {
	var out []string
	for i, a := range l.Texts {
		if a.X0 < 0 || a.Y0 < 0 || a.X1 > l.Width || a.Y1 > l.Height {
			out = append(out, fmt.Sprintf("outside the %gx%g picture: %q at (%.0f,%.0f)-(%.0f,%.0f)", l.Width, l.Height, a.S, a.X0, a.Y0, a.X1, a.Y1))
		}
		for _, b := range l.Texts[i+1:] {
			if min(a.X1, b.X1)-max(a.X0, b.X0) > slack && min(a.Y1, b.Y1)-max(a.Y0, b.Y0) > slack {
				out = append(out, fmt.Sprintf("overlap: %q (%.0f,%.0f)-(%.0f,%.0f) and %q (%.0f,%.0f)-(%.0f,%.0f)",
					a.S, a.X0, a.Y0, a.X1, a.Y1, b.S, b.X0, b.Y0, b.X1, b.Y1))
			}
		}
	}
	return out
}
