package render

import (
	"bytes"
	"fmt"
	"html/template"
	"io"

	"github.com/migtrace/migtrace/report"
	"github.com/migtrace/migtrace/report/timeline"
	"github.com/migtrace/migtrace/tracing/model"
)

// TimelineHTML writes one self-contained page: for each timeline its
// words, its picture, and the tables the other reports print for it (the
// phase table of each side, the destination's time adjustments, the
// check verdicts), as text escaped into <pre>. The page loads nothing and
// runs nothing: its Content-Security-Policy forbids both, so it reads the
// same offline and without JavaScript. ms are the sides the timelines
// were built from.
func TimelineHTML(w io.Writer, ms []model.Side, tls []timeline.Timeline) error {
	page := htmlPage{Heading: "migtrace timeline", Title: "migtrace timeline", Width: num(tlWidth)}
	if len(tls) == 1 {
		page.Title += ": migration " + tls[0].MigrationID
	} else {
		page.Heading += fmt.Sprintf(": %d migrations", len(tls))
	}
	for i := range tls {
		t := &tls[i]
		var sides []model.Side
		for _, m := range ms {
			if m.ID == t.MigrationID {
				sides = append(sides, m)
			}
		}
		sec, err := htmlSectionOf(t, sides, fmt.Sprintf("tl%d-", i))
		if err != nil {
			return err
		}
		page.Sections = append(page.Sections, sec)
	}
	var buf bytes.Buffer
	if err := timelinePage.Execute(&buf, page); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

type htmlPage struct {
	Title    string
	Heading  string
	Width    string // the picture's, in px
	Sections []htmlSection
}

type htmlSection struct {
	ID          string
	Text        tlText
	CaptionHead string
	// DiagnosisHead heads what report diagnose says, above the caption.
	DiagnosisHead string
	SVG           template.HTML
	Phases        string
	Adjustments   string
	Check         string
	CheckOK       bool
}

func htmlSectionOf(t *timeline.Timeline, sides []model.Side, id string) (htmlSection, error) {
	s := htmlSection{ID: t.MigrationID, Text: timelineText(t), CaptionHead: timeline.CaptionTitle, DiagnosisHead: timeline.DiagnosisTitle,
		// Safe: every attribute and text of the SVG is escaped by svgw.
		SVG: template.HTML(timelineSVGElement(t, id))}
	var withPhases, withTimeData []model.Side
	for _, m := range sides {
		if len(m.Phases) > 0 {
			withPhases = append(withPhases, m)
		}
		if m.HasTimeData() {
			withTimeData = append(withTimeData, m)
		}
	}
	var b bytes.Buffer
	if err := Phases(&b, withPhases, FormatTable); err != nil {
		return s, err
	}
	s.Phases = b.String()
	b.Reset()
	if len(withTimeData) == 0 {
		s.Adjustments = "No destination in the input recorded the time-data stages."
	} else if err := Adjustments(&b, withTimeData, FormatTable); err != nil {
		return s, err
	} else {
		s.Adjustments = b.String()
	}
	b.Reset()
	results := report.Check(sides, report.Options{})
	if err := Check(&b, results, FormatText); err != nil {
		return s, err
	}
	s.Check = b.String()
	s.CheckOK = len(results) > 0
	for _, r := range results {
		s.CheckOK = s.CheckOK && r.OK()
	}
	return s, nil
}

// The system's own fonts only: the page fetches nothing.
var timelinePage = template.Must(template.New("timeline").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI","DejaVu Sans",sans-serif;color:#1f2328;background:#fff;margin:0 auto;padding:16px;max-width:1032px;line-height:1.45}
h1{font-size:1.3em;margin:0 0 12px}
h2{font-size:1.15em;margin:24px 0 4px;overflow-wrap:anywhere}
h3{font-size:1em;margin:20px 0 6px}
p{margin:4px 0}
.muted{color:#57606a}
.ok{color:#1a7f37;font-weight:bold}
.fail{color:#c62828;font-weight:bold}
.caption,.failure{border:1px solid #d0d7de;background:#f6f8fa;border-radius:4px;padding:8px 12px;margin:10px 0}
.failure{border-color:#c62828;background:#fff5f5}
.caption ul,.failure ul{margin:4px 0;padding-left:20px}
.picture{overflow-x:auto;border:1px solid #eaeef2;border-radius:4px;margin:10px 0}
.picture svg{display:block}
.narrow{display:none}
@media (max-width:1040px){.narrow{display:block}}
pre{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px;background:#f6f8fa;border-radius:4px;padding:8px;overflow-x:auto;margin:0}
</style>
</head>
<body>
<h1>{{.Heading}}</h1>
{{$w := .Width}}{{range .Sections}}<section>
<h2>{{.Text.Title}} <span class="{{if eq .Text.Result "succeeded"}}ok{{else if eq .Text.Result "FAILED"}}fail{{else}}muted{{end}}">{{.Text.Result}}</span></h2>
<p class="muted">{{.Text.Subtitle}}</p>
{{if .Text.FailHead}}<div class="failure"><p class="fail">{{.Text.FailHead}}</p><ul>{{range .Text.FailLines}}<li>{{.}}</li>{{end}}</ul></div>
{{end}}{{if .Text.Diagnosis}}<div class="caption"><p><b>{{.DiagnosisHead}}</b></p><ul>{{range .Text.Diagnosis}}<li>{{.}}</li>{{end}}</ul></div>
{{end}}{{if .Text.Caption}}<div class="caption"><p><b>{{.CaptionHead}}</b></p><ul>{{range .Text.Caption}}<li>{{.}}</li>{{end}}</ul></div>
{{end}}<p class="muted">{{.Text.Clock}}</p>
<p class="narrow muted">The picture is {{$w}} px wide: scroll it sideways to see the rest.</p>
<div class="picture">
{{.SVG}}</div>
{{range .Text.Notes}}<p class="muted">Note: {{.}}</p>
{{end}}<h3>Phases</h3>
<pre>{{.Phases}}</pre>
<h3>Time adjustments</h3>
<pre>{{.Adjustments}}</pre>
<h3>Check <span class="{{if .CheckOK}}ok{{else}}fail{{end}}">{{if .CheckOK}}OK{{else}}not OK{{end}}</span></h3>
<pre>{{.Check}}</pre>
</section>
{{end}}</body>
</html>
`))
