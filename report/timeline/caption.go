package timeline

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/migtrace/migtrace/tracing/schema"
)

// CaptionTitle heads the caption: it summarises, it does not diagnose.
const CaptionTitle = "Summary (computed from the recorded numbers; not a diagnosis)"

// Caption is the picture's summary in a few lines: how long the phases
// ran, the slowest phase, the blackout against the downtime and what the
// blackout was spent on, and the pre-copy. Every figure is one the trace
// recorded or a difference of two.
func (t *Timeline) Caption() []string {
	var lines []string
	if s := t.slowest(); s != "" {
		lines = append(lines, s)
	}
	lines = append(lines, t.blackoutLines()...)
	if s := t.precopyLine(); s != "" {
		lines = append(lines, s)
	}
	return lines
}

func (t *Timeline) slowest() string {
	var best *Bar
	var lane *Lane
	for i := range t.Lanes {
		for j := range t.Lanes[i].Bars {
			if b := &t.Lanes[i].Bars[j]; best == nil || b.DurationNs > best.DurationNs {
				best, lane = b, &t.Lanes[i]
			}
		}
	}
	if best == nil {
		return ""
	}
	s := fmt.Sprintf("Slowest phase: %s on the %s, %s", best.Phase, lane.Role, Dur(best.DurationNs))
	if lane.TotalNs > 0 {
		s += fmt.Sprintf(" (%s of its %s of phases)", percent(best.DurationNs, lane.TotalNs), Dur(lane.TotalNs))
	}
	return s + "."
}

func (t *Timeline) blackoutLines() []string {
	var lines []string
	b, d := t.Blackout, t.Downtime
	switch {
	case b != nil && d != nil:
		s := fmt.Sprintf("Guest blackout %s%s (source's pause to destination's resume) against source downtime %s (pause to handoff)",
			Dur(b.Ns()), errText(b.ErrorNs), Dur(d.Ns()))
		diff := b.Ns() - d.Ns()
		switch {
		case b.ErrorNs != nil && abs(diff) <= *b.ErrorNs:
			s += fmt.Sprintf(": they differ by %s, within the clock error", Dur(diff))
		case diff >= 0:
			s += fmt.Sprintf(": the destination resumed the guest %s after the handoff", Dur(diff))
		default:
			s += fmt.Sprintf(": the blackout is %s shorter than the downtime", Dur(-diff))
		}
		lines = append(lines, s+".")
	case b != nil:
		lines = append(lines, fmt.Sprintf("Guest blackout %s%s (source's pause to destination's resume); no source downtime recorded.",
			Dur(b.Ns()), errText(b.ErrorNs)))
	case d != nil:
		lines = append(lines, fmt.Sprintf("Source downtime %s (pause to handoff); no blackout recorded.", Dur(d.Ns())))
	case t.Failure != nil:
		lines = append(lines, "No blackout or downtime recorded: the migration failed before the handoff.")
	}
	if b != nil && b.ErrorNs == nil {
		lines = append(lines, "The blackout assumes the hosts' wall clocks agree: no clock-offset estimate bounds it.")
	}
	if s := t.blackoutShare(); s != "" {
		lines = append(lines, s)
	}
	return lines
}

// blackoutShare names the source's phases that ran during the blackout,
// longest overlap first: what the guest waited for.
func (t *Timeline) blackoutShare() string {
	b := t.Blackout
	if b == nil || b.Ns() <= 0 {
		return ""
	}
	type part struct {
		phase schema.Phase
		ns    int64
	}
	var parts []part
	for _, l := range t.Lanes {
		if l.Role != schema.RoleSource {
			continue
		}
		for _, bar := range l.Bars {
			if ov := min(bar.EndNs, b.EndNs) - max(bar.StartNs, b.StartNs); ov > 0 {
				parts = append(parts, part{bar.Phase, ov})
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	slices.SortStableFunc(parts, func(a, b part) int { return cmp.Compare(b.ns, a.ns) })
	parts = parts[:min(len(parts), 3)]
	texts := make([]string, len(parts))
	for i, p := range parts {
		texts[i] = fmt.Sprintf("%s %s (%s)", p.phase, Dur(p.ns), percent(p.ns, b.Ns()))
	}
	return "During the blackout the source spent longest in " + strings.Join(texts, ", ") + "."
}

func (t *Timeline) precopyLine() string {
	var rounds, pages, zero, dirty int64
	seen := false
	for _, r := range t.Rounds {
		if r.Phase != schema.PhaseRamPushPrePause {
			continue
		}
		rounds++
		pages += r.Pages
		zero += r.ZeroPages
		dirty, seen = r.DirtyPages, true
	}
	if !seen {
		return ""
	}
	return fmt.Sprintf("Pre-copy: %s, %s pages sent (%s of them zero), %s still dirty when it stopped.",
		plural(rounds, "round"), Count(pages), Count(zero), Count(dirty))
}

func errText(e *int64) string {
	if e == nil {
		return ""
	}
	return " ± " + Dur(*e)
}

// percent rounds to whole percents; a share that rounds to 0 is "<1%",
// not a claim that it took nothing.
func percent(part, whole int64) string {
	s := fmt.Sprintf("%.0f", 100*float64(part)/float64(whole))
	if part > 0 && s == "0" {
		return "<1%"
	}
	return s + "%"
}

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return Count(n) + " " + what + "s"
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
