package render

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// svgw writes SVG elements into a buffer. Every attribute value and text
// goes through encoding/xml's escaping, so trace text (instance names,
// error messages) cannot break the document.
type svgw struct{ b bytes.Buffer }

// attrs are name, value pairs; values are strings, float64 (rounded to
// 0.1 px) or int.
func (s *svgw) tag(name string, selfClose bool, attrs ...any) {
	s.b.WriteByte('<')
	s.b.WriteString(name)
	for i := 0; i+1 < len(attrs); i += 2 {
		s.b.WriteByte(' ')
		s.b.WriteString(attrs[i].(string))
		s.b.WriteString(`="`)
		switch v := attrs[i+1].(type) {
		case string:
			xml.EscapeText(&s.b, []byte(v))
		case float64:
			s.b.WriteString(num(v))
		case int:
			s.b.WriteString(strconv.Itoa(v))
		default:
			xml.EscapeText(&s.b, []byte(fmt.Sprint(v)))
		}
		s.b.WriteByte('"')
	}
	if selfClose {
		s.b.WriteString("/>\n")
	} else {
		s.b.WriteString(">")
	}
}

func (s *svgw) el(name string, attrs ...any)   { s.tag(name, true, attrs...) }
func (s *svgw) open(name string, attrs ...any) { s.tag(name, false, attrs...); s.b.WriteByte('\n') }
func (s *svgw) end(name string)                { s.b.WriteString("</" + name + ">\n") }

// text writes a <text> element at x, y (baseline) holding t.
func (s *svgw) text(x, y float64, t string, attrs ...any) {
	s.tag("text", false, append([]any{"x", x, "y", y}, attrs...)...)
	xml.EscapeText(&s.b, []byte(t))
	s.b.WriteString("</text>\n")
}

func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

// The picture's text is monospace so that its widths are known without a
// font: every glyph of these fonts advances 0.6 em (DejaVu Sans Mono
// 0.602), which the layout rounds up so labels never collide.
const (
	tlFonts  = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"
	tlAdvEm  = 0.61
	tlFontSm = 11.0
	tlFont   = 12.0
	tlFontLg = 16.0
)

// textW is the drawn width of s at size px.
func textW(s string, size float64) float64 {
	return float64(utf8.RuneCountInString(s)) * tlAdvEm * size
}

// charsIn is how many characters of size px fit in width.
func charsIn(width, size float64) int {
	return max(1, int(width/(tlAdvEm*size)))
}

// wrap breaks s into lines of at most n characters at spaces, splitting
// a longer word.
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for _, w := range splitWords(s) {
		for utf8.RuneCountInString(w) > n {
			if line != "" {
				lines = append(lines, line)
				line = ""
			}
			r := []rune(w)
			lines = append(lines, string(r[:n]))
			w = string(r[n:])
		}
		switch {
		case line == "":
			line = w
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) <= n:
			line += " " + w
		default:
			lines = append(lines, line)
			line = w
		}
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

func splitWords(s string) []string {
	var out []string
	start := -1
	for i, r := range s {
		if r == ' ' || r == '\n' || r == '\t' {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// truncate shortens s to n characters, ending in "…" when cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	if n <= 1 {
		return "…"
	}
	return string(r[:n-1]) + "…"
}
