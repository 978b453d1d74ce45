package render_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/report/render"
	"github.com/migtrace/migtrace/report/render/chromiumtest"
	"github.com/migtrace/migtrace/report/reporttest"
	"github.com/migtrace/migtrace/report/timeline"
	"github.com/migtrace/migtrace/tracing/model"
)

// migrateTraces are traces migrate itself wrote (regenerated with
// `go test ./migrate -run TestTraceDecodesToWhatMigrateReturned -update`).
const migrateTraces = "../otlpread/testdata"

func readTraceFile(t *testing.T, path string) []model.Side {
	t.Helper()
	r := otlpread.New()
	if err := r.ReadFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	ms, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func timelineSVG(t *testing.T, ms []model.Side) []byte {
	t.Helper()
	tls, err := timeline.Build(ms)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := render.TimelineSVG(&b, tls); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// svgTexts decodes doc as XML, failing the test unless the whole of it is
// well formed with an <svg> root, and returns each <text> element's text.
func svgTexts(t *testing.T, doc []byte) []string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	var texts []string
	var cur *strings.Builder
	depth, roots := 0, 0
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
			if depth == 0 {
				roots++
				if e.Name.Local != "svg" || e.Name.Space != "http://www.w3.org/2000/svg" {
					t.Fatalf("root element %v, want svg in the SVG namespace", e.Name)
				}
			}
			depth++
			if e.Name.Local == "text" {
				cur = &strings.Builder{}
			}
		case xml.EndElement:
			depth--
			if e.Name.Local == "text" && cur != nil {
				texts = append(texts, cur.String())
				cur = nil
			}
		case xml.CharData:
			if cur != nil {
				cur.Write(e)
			}
		}
	}
	if roots != 1 || depth != 0 {
		t.Fatalf("%d root elements, depth %d at the end", roots, depth)
	}
	return texts
}

// requirePhaseLabels fails unless every phase of every side is named by
// a text of its own in the picture.
func requirePhaseLabels(t *testing.T, ms []model.Side, texts []string) {
	t.Helper()
	n := 0
	for _, m := range ms {
		for _, p := range m.Phases {
			n++
			if !slices.Contains(texts, p.Phase.String()) {
				t.Errorf("%s phase %s has no label in the picture", m.Role, p.Phase)
			}
		}
	}
	if n == 0 {
		t.Fatal("no phases to look for")
	}
}

func TestGoldenTimelineSeed(t *testing.T) {
	ms := readBack(t, reporttest.SeedSource(), reporttest.SeedDestination())
	got := timelineSVG(t, ms)
	requirePhaseLabels(t, ms, svgTexts(t, got))
	path := filepath.Join(testdata, "render", "timeline-seed.svg.golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	compareFile(t, path, got)
}

// TestTimelineExampleIsGenerated is the drift check of the README's
// picture: it must be what `make generate` draws from the committed trace.
func TestTimelineExampleIsGenerated(t *testing.T) {
	got := timelineSVG(t, readTraceFile(t, filepath.Join(migrateTraces, "migrate-sim.jsonl")))
	path := filepath.Join("..", "..", "docs", "timeline-example.svg")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; run make generate", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/timeline-example.svg differs from what the generator draws; run make generate (or go test ./report/render -update)")
	}
}

func TestTimelineSVGCases(t *testing.T) {
	noClock := reporttest.SeedDestination()
	noClock.ClockOffset = &model.ClockOffset{}
	noClock.Blackout.ErrorNs = nil
	hostileSrc, hostileDst := reporttest.SeedSource(), reporttest.SeedDestination()
	hostileSrc.Instance = `<script>alert("x")</script>`
	hostileDst.Instance = `a&b]]><!--`
	hostileSrc.Result, hostileSrc.Error, hostileSrc.ErrorPhase = "failure", `sending "TimeData": <EOF> & more`, "TimeData"
	hostileSrc.Phases[3].Failed = true
	hostileSrc.Phases = hostileSrc.Phases[:4]
	dstOnly := reporttest.WithSourceReport(reporttest.SeedDestination(), reporttest.SeedSource())

	tests := []struct {
		name  string
		sides []model.Side
		want  []string // texts the picture must hold, whole
		in    []string // substrings some text must hold
	}{
		{"real migration", readTraceFile(t, filepath.Join(migrateTraces, "migrate-sim.jsonl")),
			[]string{"guest blackout", "2.60 ms ± 5.77 µs", "downtime", "2.59 ms", "pages sent", "4,096", "40", "TSC +142,472 ticks", "TSC +10,800 ticks", "succeeded"},
			[]string{timeline.CaptionTitle, "Slowest phase: RamPushPrePause"}},
		{"failed migration", readTraceFile(t, filepath.Join(migrateTraces, "migrate-sim-failed.jsonl")),
			[]string{"FAILED", "FAILED in phase TimeData (hatched in red below)", "53.4 µs FAILED", "16.2 µs FAILED"},
			[]string{"source: migration failed in phase TimeData (source): sending TimeData", "destination: migration failed in phase TimeData (destination)", "no time-data stages recorded (failed in TimeData)"}},
		{"destination only", readBack(t, dstOnly),
			nil, []string{"phases as it reported them to the destination", "without clock evidence"}},
		{"no clock estimate", readBack(t, reporttest.SeedSource(), noClock),
			[]string{"offset unknown", "330 ms (clock offset unknown)"},
			[]string{"Clock offset unknown (the destination took no usable clock sample)", "assumes the hosts' wall clocks agree"}},
		{"zero rounds", readBack(t, reporttest.SeedSource(), reporttest.SeedDestination()),
			[]string{"no pre-copy rounds recorded", "time not recorded"}, nil},
		{"text from the trace is escaped", readBack(t, hostileSrc, hostileDst),
			nil, []string{`<script>alert("x")</script>`, `a&b]]><!--`, `sending "TimeData": <EOF> & more`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			texts := svgTexts(t, timelineSVG(t, tt.sides))
			requirePhaseLabels(t, tt.sides, texts)
			for _, w := range tt.want {
				if !slices.Contains(texts, w) {
					t.Errorf("no text %q in the picture", w)
				}
			}
			for _, w := range tt.in {
				if !slices.ContainsFunc(texts, func(s string) bool { return strings.Contains(s, w) }) {
					t.Errorf("no text holds %q", w)
				}
			}
		})
	}
}

func TestTimelineStacksMigrations(t *testing.T) {
	fleet := reporttest.Fleet(3, 7)
	texts := svgTexts(t, timelineSVG(t, fleet))
	for _, m := range fleet {
		if !slices.Contains(texts, "Migration "+m.ID) {
			t.Errorf("no picture titled for migration %s", m.ID)
		}
	}
}

var svgElement = regexp.MustCompile(`(?s)<svg .*?</svg>`)

func timelineHTML(t *testing.T, ms []model.Side) []byte {
	t.Helper()
	tls, err := timeline.Build(ms)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := render.TimelineHTML(&b, ms, tls); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestTimelineHTML(t *testing.T) {
	src, dst := reporttest.SeedSource(), reporttest.SeedDestination()
	src.Instance = `<script>alert(1)</script>`
	page := string(timelineHTML(t, readBack(t, src, dst)))
	for _, want := range []string{
		`<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
		"<h3>Phases</h3>", "TIME ELAPSED (usec)", // the phase tables
		"<h3>Time adjustments</h3>", "GUEST TSC", "Propolis", // the adjustment table
		"<h3>Check", "OK migration " + reporttest.SeedMigrationID, // the check verdicts
		timeline.CaptionTitle,
		"&lt;script&gt;alert(1)&lt;/script&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Nothing to run or fetch: no script, and no URL but the SVG namespace.
	for _, bad := range []string{"<script", "src=", "href=", "url(http", "@import"} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds %q", bad)
		}
	}
	if n := strings.Count(page, "://"); n != strings.Count(page, "http://www.w3.org/2000/svg") {
		t.Errorf("page names a URL other than the SVG namespace")
	}
	svgs := svgElement.FindAllString(page, -1)
	if len(svgs) != 1 {
		t.Fatalf("%d <svg> elements, want 1", len(svgs))
	}
	requirePhaseLabels(t, []model.Side{src, dst}, svgTexts(t, []byte(svgs[0])))
}

// TestTimelineInChromium looks at the pictures as a person would: the
// page of a real migration's trace loads in Chromium with the network
// off and logs nothing to its console, its DOM holds every phase label,
// it is screenshotted at a desktop and a phone width, and in every
// picture Chromium lays out no text over another or outside the picture.
func TestTimelineInChromium(t *testing.T) {
	chromiumtest.Binary(t)
	real := readTraceFile(t, filepath.Join(migrateTraces, "migrate-sim.jsonl"))
	file := filepath.Join(t.TempDir(), "timeline.html")
	if err := os.WriteFile(file, timelineHTML(t, real), 0o644); err != nil {
		t.Fatal(err)
	}
	dom, log := chromiumtest.DumpDOM(t, file, 1100, 1000)
	if errs := chromiumtest.ConsoleErrors(log); len(errs) > 0 {
		t.Errorf("console:\n%s", strings.Join(errs, "\n"))
	}
	var domTexts []string
	for _, m := range regexp.MustCompile(`<text[^>]*>([^<]*)</text>`).FindAllStringSubmatch(dom, -1) {
		domTexts = append(domTexts, m[1])
	}
	requirePhaseLabels(t, real, domTexts)
	for _, want := range []string{"TIME ELAPSED (usec)", "GUEST TSC", "OK migration"} {
		if !strings.Contains(dom, want) {
			t.Errorf("loaded page lacks %q", want)
		}
	}
	for _, size := range []struct {
		name string
		w, h int
	}{{"timeline-desktop.png", 1100, 1400}, {"timeline-narrow.png", 480, 1400}} {
		_, log := chromiumtest.Screenshot(t, file, size.w, size.h, size.name)
		if errs := chromiumtest.ConsoleErrors(log); len(errs) > 0 {
			t.Errorf("%s console:\n%s", size.name, strings.Join(errs, "\n"))
		}
	}

	noClock := reporttest.SeedDestination()
	noClock.ClockOffset, noClock.Blackout.ErrorNs = &model.ClockOffset{}, nil
	for _, c := range []struct {
		name string
		ms   []model.Side
	}{
		{"real", real},
		{"failed", readTraceFile(t, filepath.Join(migrateTraces, "migrate-sim-failed.jsonl"))},
		{"seed", readBack(t, reporttest.SeedSource(), reporttest.SeedDestination())},
		{"no clock", readBack(t, reporttest.SeedSource(), noClock)},
		{"three migrations", readBack(t, reporttest.Fleet(3, 7)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			svg := timelineSVG(t, c.ms)
			l := chromiumtest.MeasureSVG(t, svg)
			if want := len(svgTexts(t, svg)); len(l.Texts) != want {
				t.Fatalf("chromium laid out %d texts of %d", len(l.Texts), want)
			}
			for _, p := range l.Problems(1) {
				t.Error(p)
			}
		})
	}
}
