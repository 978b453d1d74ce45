package render

// The README's example picture, drawn from the committed trace of a real
// migration; the tests fail when the committed copy differs.
//go:generate go run ./timelinegen -o ../../docs/timeline-example.svg ../otlpread/testdata/migrate-sim.jsonl

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/migtrace/migtrace/report/timeline"
	"github.com/migtrace/migtrace/tracing/schema"
)

// The timeline's formats.
const (
	FormatSVG  Format = "svg"  // one standalone SVG document
	FormatHTML Format = "html" // one self-contained page: the picture and the tables
)

// Geometry of one picture, in px.
const (
	tlWidth  = 1000.0
	tlPad    = 16.0  // outer margin
	tlLeft   = 160.0 // where the time axis starts; row names to its left
	tlRight  = 28.0  // room right of the axis for its last tick label
	tlBarH   = 13.0
	tlRowH   = 19.0 // a waterfall row
	tlLineH  = 16.0
	tlGap    = 10.0
	tlPanelH = 196.0
)

// Colours: light fills so that dark text reads on every bar; the
// failure, blackout and downtime colours are kept apart from them.
var phaseFill = map[schema.Phase]string{
	schema.PhaseSync:             "#8dd3c7",
	schema.PhaseRamPushPrePause:  "#80b1d3",
	schema.PhasePause:            "#fdb462",
	schema.PhaseRamPushPostPause: "#bebada",
	schema.PhaseTimeData:         "#ffed6f",
	schema.PhaseDeviceState:      "#b3de69",
	schema.PhaseRamPull:          "#fccde5",
	schema.PhaseServerState:      "#d9d9d9",
	schema.PhaseFinish:           "#ccebc5",
}

const (
	colText     = "#1f2328"
	colMuted    = "#57606a"
	colFail     = "#c62828"
	colBlackout = "#d62728"
	colDowntime = "#8c4a00"
	colSent     = "#3b6fb6"
	colDirty    = "#e07b00"
)

const tlStyle = `text{font-family:` + tlFonts + `;font-size:12px;fill:` + colText + `}
.tl-title{font-size:16px;font-weight:bold}
.tl-b{font-weight:bold}
.tl-sm{font-size:11px}
.tl-mu{fill:` + colMuted + `}
.tl-fail{fill:` + colFail + `;font-weight:bold}
.tl-ok{fill:#1a7f37;font-weight:bold}
.tl-bo{fill:` + colBlackout + `}
.tl-dt{fill:` + colDowntime + `}
.tl-mid{text-anchor:middle}
.tl-halo{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.tl-end{text-anchor:end}`

// TimelineSVG writes one standalone SVG document holding a picture of
// each timeline, one under the other.
func TimelineSVG(w io.Writer, tls []timeline.Timeline) error {
	var pics []picture
	height := 0.0
	for i := range tls {
		p := drawTimeline(&tls[i], fmt.Sprintf("tl%d-", i), true)
		pics = append(pics, p)
		height += p.h
	}
	var s svgw
	s.b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	openSVG(&s, tlWidth, height, timelineLabel(tls))
	y := 0.0
	for _, p := range pics {
		s.open("g", "transform", fmt.Sprintf("translate(0,%s)", num(y)))
		s.b.Write(p.body)
		s.end("g")
		y += p.h
	}
	s.end("svg")
	_, err := w.Write(s.b.Bytes())
	return err
}

// timelineSVGElement is one timeline's picture as an <svg> element for
// a page, without the words the page sets itself.
func timelineSVGElement(t *timeline.Timeline, idPrefix string) []byte {
	p := drawTimeline(t, idPrefix, false)
	var s svgw
	openSVG(&s, tlWidth, p.h, timelineLabel([]timeline.Timeline{*t}))
	s.b.Write(p.body)
	s.end("svg")
	return s.b.Bytes()
}

func openSVG(s *svgw, w, h float64, label string) {
	s.open("svg", "xmlns", "http://www.w3.org/2000/svg", "width", w, "height", h,
		"viewBox", fmt.Sprintf("0 0 %s %s", num(w), num(h)), "role", "img", "aria-label", label)
	s.tag("title", false)
	s.b.WriteString(escapeXML(label))
	s.end("title")
	s.tag("style", false)
	s.b.WriteString(tlStyle)
	s.end("style")
}

func timelineLabel(tls []timeline.Timeline) string {
	ids := make([]string, len(tls))
	for i, t := range tls {
		ids[i] = t.MigrationID
	}
	return "Timeline of migration " + strings.Join(ids, ", ")
}

func escapeXML(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

type picture struct {
	body []byte
	h    float64
}

// drawer lays out one timeline top to bottom; y is the next free line.
type drawer struct {
	svgw
	t    *timeline.Timeline
	id   string
	y    float64
	span int64 // ns the axis covers
}

func (d *drawer) x(ns int64) float64 {
	return tlLeft + float64(ns)/float64(d.span)*(tlWidth-tlLeft-tlRight)
}

// drawTimeline draws t; withText false leaves out the words a page sets
// as its own text (title, caption, failure, clock and notes).
func drawTimeline(t *timeline.Timeline, id string, withText bool) picture {
	d := &drawer{t: t, id: id, span: max(t.EndNs, 1)}
	d.defs()
	if withText {
		d.header()
	}
	d.lanes()
	d.panels()
	if withText {
		d.notes()
	}
	return picture{body: d.b.Bytes(), h: math.Ceil(d.y + tlPad)}
}

func (d *drawer) defs() {
	d.open("defs")
	d.open("pattern", "id", d.id+"fail", "width", 6, "height", 6, "patternUnits", "userSpaceOnUse", "patternTransform", "rotate(45)")
	d.el("rect", "width", 6, "height", 6, "fill", "#ffd6d6")
	d.el("line", "x1", 0, "y1", 0, "x2", 0, "y2", 6, "stroke", colFail, "stroke-width", 2)
	d.end("pattern")
	d.end("defs")
}

// tlText is a picture's words: drawn into a standalone SVG, and set as
// the page's own text (which reflows on a narrow screen) in HTML.
type tlText struct {
	Title, Result, ResultClass string
	Subtitle                   string
	Caption                    []string
	Diagnosis                  []string
	FailHead                   string
	FailLines                  []string
	Clock                      string
	Notes                      []string
}

func timelineText(t *timeline.Timeline) tlText {
	x := tlText{Title: "Migration " + t.MigrationID, Result: "result unknown", ResultClass: "tl-mu tl-b"}
	switch t.Result {
	case schema.ResultSuccess:
		x.Result, x.ResultClass = "succeeded", "tl-ok"
	case schema.ResultFailure:
		x.Result, x.ResultClass = "FAILED", "tl-fail"
	}
	var sub, names, roles []string
	for _, l := range t.Lanes {
		if l.Instance != "" {
			names, roles = append(names, l.Instance), append(roles, l.Role.String())
		}
	}
	switch len(names) {
	case 2: // the lanes are source, destination
		sub = append(sub, "instance "+names[0]+" → "+names[1])
	case 1:
		sub = append(sub, roles[0]+" instance "+names[0])
	}
	if t.Backend != "" {
		sub = append(sub, t.Backend+" backend")
	}
	if t.MemoryBytes > 0 {
		sub = append(sub, HumanBytes(float64(t.MemoryBytes))+" guest")
	}
	sub = append(sub, "started "+t.Origin.Format("2006-01-02 15:04:05.000 UTC"))
	x.Subtitle = strings.Join(sub, " · ")
	x.Caption, x.Diagnosis = t.Caption(), t.Diagnosis
	if f := t.Failure; f != nil {
		x.FailHead = "FAILED"
		if f.Phase != "" {
			x.FailHead += " in phase " + f.Phase + " (hatched in red below)"
		}
		for _, s := range f.Sides {
			e := s.Error
			if e == "" {
				e = "no error message recorded"
			}
			x.FailLines = append(x.FailLines, s.Role.String()+": "+e)
		}
	}
	x.Clock = clockText(t)
	if p := t.Pause; p != nil && (t.Blackout != nil || t.Downtime != nil) {
		x.Notes = append(x.Notes, "The blackout and downtime start at the source's pause: "+p.From+".")
	}
	x.Notes = append(x.Notes, t.Notes...)
	return x
}

func clockText(t *timeline.Timeline) string {
	c := t.Clock
	hasDst := slices.ContainsFunc(t.Lanes, func(l timeline.Lane) bool { return l.Role == schema.RoleDestination })
	line := "Time axis: the source's wall clock, from its first phase."
	switch {
	case !hasDst:
	case c.Known:
		line = fmt.Sprintf("Time axis: the source's wall clock. The destination is shifted onto it by the clock-offset estimate %s ± %s "+
			"(destination minus source; %d samples, best RTT %s).", timeline.Dur(c.OffsetNs), timeline.Dur(c.ErrorNs), c.Samples, timeline.Dur(c.RTTNs))
	default:
		why := "no clock-offset estimate was recorded"
		if c.Recorded {
			why = "the destination took no usable clock sample"
		}
		line = "Time axis: the source's wall clock. Clock offset unknown (" + why + "): the destination is drawn as if the hosts' wall clocks agree."
	}
	return line + " Bars are each host's monotonic time; their labels, the phase tables' durations."
}

func (d *drawer) header() {
	x := timelineText(d.t)
	d.y = tlPad + tlFontLg
	d.text(tlPad, d.y, x.Title, "class", "tl-title")
	// The result follows the title, or goes to its own line if the id is
	// long enough to reach it.
	rx := tlPad + textW(x.Title+"  ", tlFontLg)
	if rx+textW(x.Result, tlFontLg) > tlWidth-tlPad {
		d.y += tlLineH + 4
		rx = tlPad
	}
	d.text(rx, d.y, x.Result, "class", x.ResultClass+" tl-title")
	for _, line := range wrap(x.Subtitle, charsIn(tlWidth-2*tlPad, tlFont)) {
		d.y += tlLineH + 2
		d.text(tlPad, d.y, line, "class", "tl-mu")
	}
	if len(x.Diagnosis) > 0 {
		d.box(timeline.DiagnosisTitle, "tl-b", x.Diagnosis, "#f1f8ff", "#9ecbff")
	}
	if len(x.Caption) > 0 {
		d.box(timeline.CaptionTitle, "tl-b", x.Caption, "#f6f8fa", "#d0d7de")
	}
	if x.FailHead != "" {
		d.box(x.FailHead, "tl-fail", x.FailLines, "#fff5f5", colFail)
	}
	d.y += 6
	for _, l := range wrap(x.Clock, charsIn(tlWidth-2*tlPad, tlFontSm)) {
		d.y += tlLineH
		d.text(tlPad, d.y, l, "class", "tl-sm tl-mu")
	}
}

// box draws a framed block of wrapped lines under a bold heading.
func (d *drawer) box(heading, headClass string, lines []string, fill, stroke string) {
	const inset = 8.0
	n := charsIn(tlWidth-2*tlPad-2*inset, tlFont)
	var wrapped []string
	for _, l := range lines {
		wrapped = append(wrapped, wrap(l, n)...)
	}
	top := d.y + tlGap
	h := inset + tlLineH*float64(1+len(wrapped)) + inset/2
	d.el("rect", "x", tlPad, "y", top, "width", tlWidth-2*tlPad, "height", h, "rx", 4, "fill", fill, "stroke", stroke)
	y := top + inset + tlFont
	d.text(tlPad+inset, y, heading, "class", headClass)
	for _, l := range wrapped {
		y += tlLineH
		d.text(tlPad+inset, y, l)
	}
	d.y = top + h
}

// lanes draws the picture's waterfall: a row for the blackout, then per
// side a header row and a row per phase (its name left of the axis, its
// bar, its duration beside the bar), the source's downtime under its
// phases, the blackout as a band over every row, and the time axis. One
// bar a row keeps every label clear of every other, however short the
// phases.
func (d *drawer) lanes() {
	t := d.t
	d.y += tlGap
	bandTop := d.y
	if b := t.Blackout; b != nil {
		label := timeline.Dur(b.Ns())
		if b.ErrorNs != nil {
			label += " ± " + timeline.Dur(*b.ErrorNs)
		} else {
			label += " (clock offset unknown)"
		}
		y := d.row(0, "guest blackout", "tl-sm tl-b tl-bo")
		d.bracket(b.StartNs, b.EndNs, y, colBlackout, label, "tl-sm tl-b tl-bo")
		if e := b.ErrorNs; e != nil {
			// The resume edge is as uncertain as the clock offset: an
			// error bar of ± the bound (a tick when under a pixel).
			xa, xb := d.x(b.EndNs-*e), d.x(b.EndNs+*e)
			ym := y + tlBarH/2
			d.el("path", "d", fmt.Sprintf("M%s %sv%sM%s %sH%sM%s %sv%s", num(xa), num(ym-5), num(10.0), num(xa), num(ym), num(xb), num(xb), num(ym-5), num(10.0)),
				"stroke", colBlackout, "stroke-width", 1.5, "fill", "none")
		}
	}
	for _, l := range t.Lanes {
		d.laneHeader(&l)
		for i, b := range l.Bars {
			nameClass := "tl-sm"
			if b.Failed {
				nameClass = "tl-sm tl-fail"
			}
			y := d.row(i+1, b.Phase.String(), nameClass)
			d.bar(b, y)
		}
		if l.Role == schema.RoleSource && t.Downtime != nil {
			dt := t.Downtime
			y := d.row(len(l.Bars)+1, "downtime", "tl-sm tl-b tl-dt")
			d.bracket(dt.StartNs, dt.EndNs, y, colDowntime, timeline.Dur(dt.Ns()), "tl-sm tl-b tl-dt")
		}
	}
	if len(t.Lanes) == 0 {
		d.y += tlRowH
	}
	if b := t.Blackout; b != nil {
		x0, x1 := d.x(b.StartNs), d.x(b.EndNs)
		d.el("rect", "x", x0, "y", bandTop, "width", math.Max(x1-x0, 1), "height", d.y-bandTop+4,
			"fill", colBlackout, "fill-opacity", 0.08, "stroke", colBlackout, "stroke-opacity", 0.6, "stroke-dasharray", "4 3")
	}
	d.axis()
}

// row starts a waterfall row named name and returns its bars' top; odd
// rows are shaded so that a bar reads across to its name.
func (d *drawer) row(i int, name, class string) float64 {
	top := d.y
	if i%2 == 1 {
		d.el("rect", "x", tlPad, "y", top, "width", tlWidth-2*tlPad, "height", tlRowH, "fill", "#f6f8fa")
	}
	d.text(tlPad+10, top+tlRowH/2+4, name, "class", class)
	d.y += tlRowH
	return top + (tlRowH-tlBarH)/2
}

// laneHeader names a side: its role, instance, and how its clock was
// placed.
func (d *drawer) laneHeader(l *timeline.Lane) {
	d.y += 6
	base := d.y + tlFont + 2
	d.text(tlPad, base, l.Role.String(), "class", "tl-b")
	var info []string
	if l.Instance != "" {
		info = append(info, l.Instance)
	}
	if l.ReportedByPeer {
		info = append(info, "phases as it reported them to the destination")
	}
	if l.Role == schema.RoleDestination {
		if c := d.t.Clock; c.Known {
			sign := "+"
			if c.OffsetNs > 0 {
				sign = ""
			}
			info = append(info, fmt.Sprintf("clock shifted by %s%s ± %s", sign, timeline.Dur(-c.OffsetNs), timeline.Dur(c.ErrorNs)))
		}
	}
	x := tlPad + textW(l.Role.String()+"  ", tlFont)
	text := strings.Join(info, " · ")
	unknown := l.Role == schema.RoleDestination && !d.t.Clock.Known
	room := tlWidth - tlPad - x
	if unknown {
		room -= textW(" · offset unknown", tlFontSm)
	}
	text = truncate(text, charsIn(room, tlFontSm))
	d.text(x, base, text, "class", "tl-sm tl-mu")
	if unknown {
		sep := ""
		if text != "" {
			sep = " · "
		}
		d.text(x+textW(text+sep, tlFontSm), base, "offset unknown", "class", "tl-sm tl-fail")
	}
	d.y = base + 6
}

// bar draws one phase's bar on the row whose bars start at y, its
// duration right of it, else left of it when the axis ends first.
func (d *drawer) bar(b timeline.Bar, y float64) {
	x0, x1 := d.x(b.StartNs), d.x(b.EndNs)
	w := math.Max(x1-x0, 1) // a phase too short for a pixel still shows
	fill := phaseFill[b.Phase]
	if fill == "" {
		fill = "#eeeeee"
	}
	stroke, sw := "#6e7781", 0.6
	if b.Failed {
		fill, stroke, sw = "url(#"+d.id+"fail)", colFail, 2.0
	}
	d.el("rect", "x", x0, "y", y, "width", w, "height", tlBarH, "fill", fill, "stroke", stroke, "stroke-width", sw)
	label, class := timeline.Dur(b.DurationNs), "tl-sm"
	if b.Failed {
		label, class = label+" FAILED", "tl-sm tl-fail"
	}
	d.beside(x0, x0+w, y, label, class)
}

// bracket draws a measured interval as a bracket on a row, labelled.
func (d *drawer) bracket(start, end int64, y float64, colour, label, class string) {
	x0, x1 := d.x(start), d.x(end)
	d.el("path", "d", fmt.Sprintf("M%s %sV%sH%sV%s", num(x0), num(y+tlBarH), num(y+2), num(x1), num(y+tlBarH)),
		"fill", "none", "stroke", colour, "stroke-width", 2)
	d.beside(x0, x1, y, label, class)
}

// beside writes a label right of [x0, x1], else left of it, else over
// it, on the row whose bars start at y.
func (d *drawer) beside(x0, x1, y float64, label, class string) {
	w := textW(label, tlFontSm)
	ty := y + tlBarH/2 + 4
	switch {
	case x1+5+w <= tlWidth-tlPad:
		d.text(x1+5, ty, label, "class", class+" tl-halo")
	case x0-5-w >= tlLeft:
		d.text(x0-5, ty, label, "class", class+" tl-end tl-halo")
	default:
		d.text(math.Max(tlLeft, tlWidth-tlPad-w), ty, label, "class", class+" tl-halo")
	}
}

// axis draws the time axis under the lanes with "nice" ticks.
func (d *drawer) axis() {
	y := d.y + 4
	d.el("line", "x1", tlLeft, "y1", y, "x2", tlWidth-tlRight, "y2", y, "stroke", colMuted)
	step := niceStep(d.span / 8)
	unit, div := "ns", 1.0
	switch {
	case step >= 1e9:
		unit, div = "s", 1e9
	case step >= 1e6:
		unit, div = "ms", 1e6
	case step >= 1e3:
		unit, div = "µs", 1e3
	}
	for v := int64(0); v <= d.span; v += step {
		x := d.x(v)
		d.el("line", "x1", x, "y1", y, "x2", x, "y2", y+4, "stroke", colMuted)
		label := strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.3f", float64(v)/div), "0"), ".")
		if v == 0 {
			label = "0"
		}
		d.text(x, y+16, label, "class", "tl-sm tl-mid tl-mu")
	}
	d.y = y + 32
	d.text(tlWidth-tlRight, d.y, unit+" since the first phase began (source's wall clock)", "class", "tl-sm tl-end tl-mu")
}

// niceStep rounds ns up to 1, 2 or 5 times a power of ten.
func niceStep(ns int64) int64 {
	if ns < 1 {
		return 1
	}
	p := int64(1)
	for p <= ns/10 {
		p *= 10
	}
	for _, m := range []int64{1, 2, 5, 10} {
		if m*p >= ns {
			return m * p
		}
	}
	return 10 * p
}

// panels draws the pre-copy chart and the time-data marks side by side.
func (d *drawer) panels() {
	top := d.y + tlGap
	const split = 400.0
	d.precopy(tlPad, top, split-tlPad-tlGap)
	d.timeData(split, top, tlWidth-tlPad-split)
	d.y = top + tlPanelH
}

func (d *drawer) panel(x, y, w float64, title string) {
	d.el("rect", "x", x, "y", y, "width", w, "height", tlPanelH, "rx", 4, "fill", "#ffffff", "stroke", "#d0d7de")
	for i, l := range wrap(title, charsIn(w-16, tlFont)) {
		d.text(x+8, y+18+float64(i)*tlLineH, l, "class", "tl-b")
	}
}

func (d *drawer) precopy(x, y, w float64) {
	t := d.t
	title := "Pre-copy rounds"
	if len(t.Rounds) > 0 {
		title += " (" + t.RoundsRole.String() + ")"
	}
	d.panel(x, y, w, title)
	if len(t.Rounds) == 0 {
		d.text(x+w/2, y+tlPanelH/2, "no pre-copy rounds recorded", "class", "tl-mid tl-mu")
		return
	}
	// Legend.
	ly := y + 36
	d.el("rect", "x", x+8, "y", ly-9, "width", 10, "height", 10, "fill", colSent)
	d.text(x+22, ly, "pages sent", "class", "tl-sm")
	lx := x + 22 + textW("pages sent", tlFontSm) + 14
	d.el("rect", "x", lx, "y", ly-9, "width", 10, "height", 10, "fill", colDirty)
	d.text(lx+14, ly, "still dirty after the round", "class", "tl-sm")

	var top int64 = 1
	for _, r := range t.Rounds {
		top = max(top, r.Pages, r.DirtyPages)
	}
	topLabel := count(top)
	cx0 := x + 12 + textW(topLabel, tlFontSm) + 6
	cx1 := x + w - 10
	cy0, cy1 := ly+26, y+tlPanelH-34 // value labels above, round numbers below
	h := cy1 - cy0
	d.el("line", "x1", cx0, "y1", cy1, "x2", cx1, "y2", cy1, "stroke", colMuted)
	d.el("line", "x1", cx0, "y1", cy0, "x2", cx0, "y2", cy1, "stroke", colMuted)
	d.text(cx0-4, cy0+4, topLabel, "class", "tl-sm tl-end tl-mu")
	d.text(cx0-4, cy1+4, "0", "class", "tl-sm tl-end tl-mu")

	n := len(t.Rounds)
	gw := (cx1 - cx0) / float64(n)
	valW := 0.0
	for _, r := range t.Rounds {
		valW = math.Max(valW, math.Max(textW(count(r.Pages), tlFontSm), textW(count(r.DirtyPages), tlFontSm)))
	}
	showValues := gw >= 2*valW+10
	bw := math.Min(26, gw*0.38)
	sep := bw/2 + 1
	if showValues {
		sep = math.Max(sep, valW/2+3)
	}
	// Round numbers every k-th group, so that they do not collide.
	k := max(1, int(math.Ceil((textW(fmt.Sprint(t.Rounds[n-1].Round), tlFontSm)+8)/gw)))
	hy := func(v int64) float64 {
		bh := float64(v) / float64(top) * h
		if v > 0 && bh < 1 {
			bh = 1 // a count too small for a pixel still shows
		}
		return bh
	}
	for i, r := range t.Rounds {
		c := cx0 + gw*(float64(i)+0.5)
		for _, b := range []struct {
			v   int64
			x   float64
			col string
		}{{r.Pages, c - sep, colSent}, {r.DirtyPages, c + sep, colDirty}} {
			bh := hy(b.v)
			d.el("rect", "x", b.x-bw/2, "y", cy1-bh, "width", bw, "height", bh, "fill", b.col)
			if showValues {
				d.text(b.x, cy1-bh-4, count(b.v), "class", "tl-sm tl-mid")
			}
		}
		if i%k == 0 {
			label := fmt.Sprint(r.Round)
			if r.Phase == schema.PhaseRamPushPostPause {
				label += "p"
			}
			d.text(c, cy1+14, label, "class", "tl-sm tl-mid tl-mu")
		}
	}
	d.text(cx1, cy1+28, "round (p: after the pause)", "class", "tl-sm tl-end tl-mu")
}

func (d *drawer) timeData(x, y, w float64) {
	td := d.t.TimeData
	title := "Time data (destination"
	if td.Phase != nil {
		title += ", TimeData at " + timeline.Dur(td.Phase.StartNs)
	}
	title += ")"
	d.panel(x, y, w, title)
	if len(td.Stages) == 0 {
		msg := "no time-data stages recorded"
		if f := d.t.Failure; f != nil && f.Phase != "" {
			msg += " (failed in " + f.Phase + ")"
		}
		d.text(x+w/2, y+tlPanelH/2, msg, "class", "tl-mid tl-mu")
		return
	}
	// A zoomed axis of the stages' snapshots, from the source's read.
	ax0, ax1 := x+24, x+w-24
	ay := y + 52
	var last int64 = 1
	for _, s := range td.Stages {
		if s.Placed {
			last = max(last, s.AtNs)
		}
	}
	zx := func(ns int64) float64 { return ax0 + float64(ns)/float64(last)*(ax1-ax0) }
	d.el("line", "x1", ax0, "y1", ay, "x2", ax1, "y2", ay, "stroke", colMuted)
	d.text(ax0, ay-11, "source's read", "class", "tl-sm tl-mu")
	d.text(ax1, ay-11, "+"+timeline.Dur(last), "class", "tl-sm tl-end tl-mu")
	colW := (w - 16) / float64(len(td.Stages))
	n := charsIn(colW-8, tlFontSm)
	colTop := ay + 30
	for i, s := range td.Stages {
		cx := x + 8 + colW*float64(i)
		if s.Placed {
			mx := zx(s.AtNs)
			d.el("path", "d", fmt.Sprintf("M%s %sl-5 -7h10z", num(mx), num(ay)), "fill", colText)
			// Each leader turns at its own height, so that two running
			// side by side stay apart.
			turn := ay + 6 + 5*float64(i)
			d.el("path", "d", fmt.Sprintf("M%s %sV%sH%sV%s", num(mx), num(ay+2), num(turn), num(cx+4), num(colTop-12)),
				"stroke", "#8c959f", "stroke-width", 0.8, "fill", "none")
		}
		lines := stageLines(s, td.GuestFreq)
		ly := colTop
		for j, l := range lines {
			class := "tl-sm"
			if j == 0 {
				class = "tl-b"
			}
			for _, wl := range wrap(l, n) {
				if ly > y+tlPanelH-6 {
					break // the panel's height bounds the column
				}
				d.text(cx+4, ly, wl, "class", class)
				ly += 13
			}
		}
	}
}

// stageLines is one stage's column: its label, when it was read, and its
// adjustment.
func stageLines(s timeline.Stage, freq uint64) []string {
	name := s.Label
	if s.Stage == schema.StageUserspace {
		name += " (userspace)"
	}
	at := "time not recorded"
	if s.Placed {
		at = "at +" + timeline.Dur(s.AtNs)
	}
	lines := []string{name, at}
	switch s.Stage {
	case schema.StageMigration:
		lines = append(lines, "guest TSC "+count(int64(s.GuestTSC)), "wall-clock delta "+timeline.Dur(s.MigrateDeltaNs))
	case schema.StageUserspace:
		lines = append(lines, "TSC "+timeline.TSCDelta(s.TSCDelta)+" ticks")
		if freq > 0 {
			lines = append(lines, fmt.Sprintf("(%s at %.2f GHz)", timeline.Dur(s.MigrateDeltaNs), float64(freq)/1e9))
		}
		lines = append(lines, "boot_hrtime "+signed(s.BootHrtimeDelta)+" ns", "took "+timeline.Dur(s.DurationNs))
	case schema.StageKernel:
		lines = append(lines, "TSC "+timeline.TSCDelta(s.TSCDelta)+" ticks")
		if s.VMMLatencyNs > 0 {
			lines = append(lines, "(VMM latency "+timeline.Dur(s.VMMLatencyNs)+")")
		}
		lines = append(lines, "took "+timeline.Dur(s.DurationNs))
	}
	return lines
}

func (d *drawer) notes() {
	lines := timelineText(d.t).Notes
	if len(lines) == 0 {
		return
	}
	d.y += 6
	for _, l := range lines {
		for _, wl := range wrap("Note: "+l, charsIn(tlWidth-2*tlPad, tlFontSm)) {
			d.y += 14
			d.text(tlPad, d.y, wl, "class", "tl-sm tl-mu")
		}
	}
}

func count(n int64) string { return timeline.Count(n) }

// signed is count with a sign either way: an adjustment, not a level.
func signed(n int64) string {
	if n < 0 {
		return count(n)
	}
	return "+" + count(n)
}
