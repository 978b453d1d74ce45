package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Cause names what dominated a migration's total time or its downtime.
type Cause string

// The causes Diagnose names. CauseRules says when each applies.
const (
	CauseHealthy           Cause = "healthy"
	CauseFailed            Cause = "failed"
	CauseLinkBound         Cause = "link-bound"
	CauseNonConverging     Cause = "non-converging"
	CauseLatencyBound      Cause = "latency-bound"
	CauseVerificationBound Cause = "verification-bound"
	CauseScanBound         Cause = "scan-bound"
	CauseClockSync         Cause = "clock-sync"
	CauseDeviceState       Cause = "device-state"
	CauseTimeData          Cause = "time-data"
	CauseResume            Cause = "resume"
	// CauseNotPaused is a downtime cause only: the migration failed before
	// the source paused the guest, so there was no downtime.
	CauseNotPaused Cause = "not-paused"
	// CauseInsufficient: the input lacks what telling the cause needs; the
	// diagnosis says what.
	CauseInsufficient Cause = "insufficient-evidence"
)

// Thresholds of the rules, each justified where it is used.
const (
	// dominantShare: a part dominates a time when it takes at least half
	// of it, i.e. no less than everything else together.
	dominantShare = 0.5
	// nonConvergingDirtyRatio: a pre-copy round that leaves at least 90%
	// of the pages it sent dirty cuts what is left by under a tenth, so
	// even 12 rounds (migrate's default limit) leave over 0.9^11 ≈ 31% of
	// it for the pause: the guest dirties about as fast as the link sends.
	nonConvergingDirtyRatio = 0.9
	// linkBoundUtilisation: the pre-copy ran at 80% of the cap or more.
	// Capped runs measure 96–104% of it; under 80%, a fifth of the round
	// time went to something other than the wire.
	linkBoundUtilisation = 0.8
	// capBurstNs is what the bandwidth cap admits at once: its token
	// bucket holds about 50 ms of traffic (migrate/wire.WithMaxBandwidth).
	// A transfer of B bytes in T therefore proves a link rate of at least
	// B/(T+50 ms), whether a cap or the link limited it.
	capBurstNs = 50e6
	// sustainedRoundNs: rounds at least this long overstate the cap by at
	// most capBurstNs/sustainedRoundNs = 20%, so their wire rates can be
	// compared with each other.
	sustainedRoundNs = 250e6
	// zeroShareSpread and wireRateSpread: two sustained rounds whose
	// zero-page shares differ by 25 points would, were the sender's scan
	// the limit (a steady page rate), differ in wire rate by at least
	// 1/(1−0.25) ≈ 1.33×; within 1.2× of each other, the wire is the limit.
	zeroShareSpread = 0.25
	wireRateSpread  = 1.2
	// fixedRoundTrips are the protocol's round trips besides the clock
	// probes and the pre-copy rounds: the version handshake, the
	// post-pause round, TimeData, DeviceState, RamPull and ServerState
	// exchanges, and Finish's two (Finish/Okay, Handoff/Resumed).
	fixedRoundTrips = 8
	// pausedRoundTrips are those while the guest is paused, up to the
	// Handoff: the post-pause round, TimeData, DeviceState, RamPull,
	// ServerState, and Finish/Okay.
	pausedRoundTrips = 6
	pageSize         = 4096
)

// CauseRule says when Diagnose names a cause, for help text and docs.
type CauseRule struct {
	Cause Cause
	Rule  string
}

func pct(f float64) string { return strconv.FormatFloat(f*100, 'f', -1, 64) + "%" }

// CauseRules lists the causes in the order Diagnose tries them (failed
// and insufficient-evidence first, healthy last), with their rules and
// thresholds.
var CauseRules = []CauseRule{
	{CauseFailed, "a side's result is failure: the phase and its error. The downtime cause is failed too when the source had paused the guest, else not-paused."},
	{CauseInsufficient, "the input lacks what a rule needs (a result, phase spans, the source's round events, a part no rule explains); the diagnosis names what."},
	{CauseLatencyBound, fmt.Sprintf("the protocol's round trips (clock probes + pre-copy rounds + %d) x the RTT of the destination's clock estimate take >= %s of the total; downtime: %d round trips x RTT >= %s of the pause.",
		fixedRoundTrips, pct(dominantShare), pausedRoundTrips, pct(dominantShare))},
	{CauseNonConverging, fmt.Sprintf("the RAM pushes take >= %s of the total and the pre-copy ran >= 2 rounds, its last leaving >= %s of the pages it sent dirty (dirty rate ~ throughput); or, with the settings known, it hit the round limit and the paused push outlasted the downtime target. Downtime: the post-pause push dominates the pause of such a migration.",
		pct(dominantShare), pct(nonConvergingDirtyRatio))},
	{CauseLinkBound, fmt.Sprintf("the RAM pushes take >= %s of the total, converged, at the wire's limit: >= %s of the max bandwidth when known; without it, two rounds of >= %v whose zero-page shares differ by >= %.0f points ran within %.1fx of one wire rate (a scan limit would have moved it with the zero share), the whole pre-copy at >= %s of it. Downtime: the post-pause push dominates at >= %s of that rate.",
		pct(dominantShare), pct(linkBoundUtilisation), time.Duration(sustainedRoundNs), 100*zeroShareSpread, wireRateSpread, pct(linkBoundUtilisation), pct(linkBoundUtilisation))},
	{CauseScanBound, fmt.Sprintf("the RAM pushes take >= %s of the total, converged, and >= %s of the pre-copy's round time was off the wire: round time - wire bytes / link rate - RTT, the link rate being the max bandwidth or else the most any RAM transfer sustained, bytes / (time + the cap's %v burst). Downtime: the same of the post-pause push.",
		pct(dominantShare), pct(dominantShare), time.Duration(capBurstNs))},
	{CauseClockSync, fmt.Sprintf("Sync takes >= %s of the total and its clock probes (samples x RTT) >= %s of Sync.", pct(dominantShare), pct(dominantShare))},
	{CauseDeviceState, fmt.Sprintf("DeviceState takes >= %s of the total, or of the pause.", pct(dominantShare))},
	{CauseTimeData, fmt.Sprintf("TimeData takes >= %s of the total, or of the pause.", pct(dominantShare))},
	{CauseVerificationBound, fmt.Sprintf("the handoff checks take >= %s of the pause: the source's wait at Finish for its memory checksum (begun at Pause) and the destination's checks before its Okay; total: Finish takes >= %s and those checks are its larger part.",
		pct(dominantShare), pct(dominantShare))},
	{CauseResume, fmt.Sprintf("the destination's handoff-to-resume takes >= %s of the pause; total: Finish takes >= %s and its larger part is the destination's resume and the continuity measurement after it.",
		pct(dominantShare), pct(dominantShare))},
	{CauseHealthy, "the migration succeeded and no rule above applies: the RAM push (the migration's work) converged, no other part takes half the time, and the downtime met its target when the target is known."},
}

// Settings are what a migration ran with. A nil field is not known: the
// trace does not record it and the operator did not say.
type Settings struct {
	MaxBandwidth   *int64         // bytes per second; 0 = no cap
	DowntimeTarget *time.Duration // pre-copy stops once the rest fits in it
	MaxRounds      *int64         // the most pre-copy rounds
}

// DiagnoseOptions change what Diagnose assumes.
type DiagnoseOptions struct {
	// Assumed are the settings the migrations ran with, as the operator
	// gives them: the traces do not record them yet.
	Assumed Settings
}

// Measure is one named number of a diagnosis's evidence. The name ends in
// its unit: _ns, _bytes, _bytes_per_sec, _pages_per_sec, _share (of a
// time, 0–1), _ratio; counts have none.
type Measure struct {
	Name  string
	Value float64
}

// Evidence is the numbers a diagnosis rests on, in the order it used them.
type Evidence []Measure

// Get returns the value named name.
func (e Evidence) Get(name string) (float64, bool) {
	for _, m := range e {
		if m.Name == name {
			return m.Value, true
		}
	}
	return 0, false
}

func (e *Evidence) set(name string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	// Shares and ratios to three decimals: more is noise, and the output
	// stays stable.
	if strings.HasSuffix(name, "_share") || strings.HasSuffix(name, "_ratio") {
		v = math.Round(v*1000) / 1000
	} else {
		v = math.Round(v)
	}
	for i := range *e {
		if (*e)[i].Name == name {
			(*e)[i].Value = v
			return
		}
	}
	*e = append(*e, Measure{name, v})
}

// MarshalJSON writes an object of the numbers in evidence order.
func (e Evidence) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range e {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.Name)
		b.Write(k)
		b.WriteByte(':')
		b.WriteString(strconv.FormatFloat(m.Value, 'f', -1, 64))
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Diagnosis is what dominated one migration's total time and its
// downtime, with the evidence and what to change.
type Diagnosis struct {
	MigrationID string `json:"migration"`
	// Role is the side whose record the times are on: the destination
	// when the input holds it (it dials the source and resumes the guest,
	// so its phases span the whole migration), else the source.
	Role   schema.Role `json:"role"`
	Result string      `json:"result"`
	// Sides are the sides whose own records the input holds.
	Sides      []schema.Role `json:"sides"`
	TotalNs    int64         `json:"total_ns"`
	DowntimeNs int64         `json:"downtime_ns"`
	BlackoutNs int64         `json:"blackout_ns"`

	Cause         Cause    `json:"cause"`
	Why           string   `json:"why"`
	DowntimeCause Cause    `json:"downtime_cause"`
	DowntimeWhy   string   `json:"downtime_why"`
	Evidence      Evidence `json:"evidence"`
	Suggestion    string   `json:"suggestion"`
	// NotRecorded names what the diagnosis could have used but the input
	// lacks, such as the settings.
	NotRecorded []string `json:"not_recorded,omitempty"`
}

// Diagnose diagnoses every migration in ms from all of its sides present,
// in the order the migrations first appear.
func Diagnose(ms []model.Side, opts DiagnoseOptions) []Diagnosis {
	groups := ByMigration(ms)
	out := make([]Diagnosis, len(groups))
	for i, sides := range groups {
		out[i] = DiagnoseMigration(sides, opts)
	}
	return out
}

// diag holds one migration's sides and what the rules derive from them.
type diag struct {
	d Diagnosis
	// src is the source's own record, nil when the input lacks it; dst
	// the destination's. srcPhases are the source's phases from its own
	// record or, failing that, as it reported them to the destination.
	src, dst  *model.Side
	srcPhases []model.PhaseTiming
	primary   *model.Side
	set       Settings

	rttNs, probes int64
	rounds        []model.PrecopyRound

	// Filled by the RAM analysis.
	nonConverging bool
	linkRate      float64 // bytes/s the wire is known to reach; 0 unknown
	linkShown     bool    // the wire was shown to be the limit
	badPhases     bool    // a phase ends before it begins
	why, fix      []string
}

// DiagnoseMigration diagnoses one migration from the sides of it the
// input holds (see CauseRules).
func DiagnoseMigration(sides []model.Side, opts DiagnoseOptions) Diagnosis {
	g := &diag{set: opts.Assumed}
	var rebuilt *model.Side
	for i := range sides {
		m := &sides[i]
		g.d.MigrationID = m.ID
		switch {
		case m.ReportedByPeer:
			rebuilt = m
		case m.Role == schema.RoleSource && g.src == nil:
			g.src = m
		case m.Role == schema.RoleDestination && g.dst == nil:
			g.dst = m
		}
	}
	switch {
	case g.src != nil:
		g.srcPhases = g.src.Phases
	case g.dst != nil:
		g.srcPhases = g.dst.SourcePhases
	case rebuilt != nil:
		g.srcPhases = rebuilt.Phases
	}
	g.primary = g.dst
	if g.primary == nil {
		g.primary = g.src
	}
	for _, m := range []*model.Side{g.src, g.dst} {
		if m != nil {
			g.d.Sides = append(g.d.Sides, m.Role)
		}
	}
	g.settingsEvidence()
	if g.primary == nil {
		g.d.Cause, g.d.DowntimeCause = CauseInsufficient, CauseInsufficient
		g.d.Why = "only a source rebuilt from its destination's record is in the input"
		g.d.DowntimeWhy = g.d.Why
		return g.d
	}
	g.d.Role = g.primary.Role
	g.d.Result = g.result()
	if g.dst != nil && g.dst.ClockOffset.Known() {
		g.rttNs, g.probes = g.dst.ClockOffset.RTTNs, g.dst.ClockOffset.Samples
	} else {
		g.d.NotRecorded = append(g.d.NotRecorded, "RTT (the destination's clock-offset estimate)")
	}
	if g.src != nil {
		for _, r := range g.src.PrecopyRounds {
			if r.Phase != schema.PhaseRamPushPrePause {
				continue
			}
			if r.Pages < 0 || r.ZeroPages < 0 || r.WireBytes < 0 || r.DirtyPages < 0 || r.RoundNs <= 0 {
				// A round that moved negative pages or took no time is
				// no evidence of a rate: set the rounds aside.
				g.d.NotRecorded = append(g.d.NotRecorded, fmt.Sprintf("valid pre-copy rounds (round %d records %d pages, %d dirty, %d wire bytes in %d ns)",
					r.Round, r.Pages, r.DirtyPages, r.WireBytes, r.RoundNs))
				g.rounds = nil
				break
			}
			g.rounds = append(g.rounds, r)
		}
	} else {
		g.d.NotRecorded = append(g.d.NotRecorded, "the source's pre-copy rounds (its own spans)")
	}
	if g.src != nil {
		g.d.DowntimeNs = g.src.DowntimeNs
	} else if g.dst != nil {
		g.d.DowntimeNs = g.dst.SourceDowntimeNs
	}
	if g.dst != nil && g.dst.Blackout != nil {
		g.d.BlackoutNs = g.dst.Blackout.Ns
	}

	g.d.Cause, g.d.Why = g.totalCause()
	total := g.fix
	g.fix = nil
	g.d.DowntimeCause, g.d.DowntimeWhy = g.downtimeCause()
	g.d.Suggestion = strings.Join(append(total, g.fix...), " ")
	return g.d
}

func (g *diag) settingsEvidence() {
	s := g.set
	if s.MaxBandwidth != nil {
		g.d.Evidence.set("max_bandwidth_bytes_per_sec", float64(*s.MaxBandwidth))
	} else {
		g.d.NotRecorded = append(g.d.NotRecorded, "max bandwidth")
	}
	if s.DowntimeTarget != nil {
		g.d.Evidence.set("downtime_target_ns", float64(*s.DowntimeTarget))
	} else {
		g.d.NotRecorded = append(g.d.NotRecorded, "downtime target")
	}
	if s.MaxRounds != nil {
		g.d.Evidence.set("max_rounds", float64(*s.MaxRounds))
	} else {
		g.d.NotRecorded = append(g.d.NotRecorded, "max rounds")
	}
}

// result is failure if any side failed, success if every side present
// succeeded, else "" (a side's outcome is not in the input).
func (g *diag) result() string {
	res := schema.ResultSuccess
	for _, m := range []*model.Side{g.src, g.dst} {
		switch {
		case m == nil:
		case m.Failed():
			return schema.ResultFailure
		case m.Result != schema.ResultSuccess:
			res = ""
		}
	}
	return res
}

func (g *diag) suggest(s string) { g.fix = append(g.fix, s) }

// phaseOf returns phase p of phases, and whether it ran.
func phaseOf(phases []model.PhaseTiming, p schema.Phase) (model.PhaseTiming, bool) {
	for _, t := range phases {
		if t.Phase == p {
			return t, true
		}
	}
	return model.PhaseTiming{}, false
}

// evidenceName is a phase's evidence prefix: "ram_push_pre_pause".
func evidenceName(p schema.Phase) string {
	var b strings.Builder
	for i, c := range p.String() {
		if c >= 'A' && c <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

func share(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

func human(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", ns/1000)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(ns)/1e6)
	}
	return fmt.Sprintf("%.3fs", float64(ns)/1e9)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func rate(bytesPerSec float64) string {
	return fmt.Sprintf("%.1f MiB/s", bytesPerSec/(1<<20))
}

// failure describes the failed sides: "TimeData: source: ...".
func (g *diag) failure() (phase, why string) {
	var parts []string
	for _, m := range []*model.Side{g.src, g.dst} {
		if m == nil || !m.Failed() {
			continue
		}
		if phase == "" {
			phase = m.ErrorPhase
		}
		msg := m.Error
		if msg == "" {
			msg = "no error recorded"
		}
		parts = append(parts, fmt.Sprintf("%s (in %s): %s", m.Role, orUnknown(m.ErrorPhase), msg))
	}
	return orUnknown(phase), strings.Join(parts, "; ")
}

func orUnknown(s string) string {
	if s == "" {
		return "an unrecorded phase"
	}
	return s
}

// totalCause applies CauseRules to the total time on the primary side.
func (g *diag) totalCause() (Cause, string) {
	p := g.primary
	ev := &g.d.Evidence
	if g.d.Result == schema.ResultFailure {
		phase, why := g.failure()
		if len(p.Phases) > 0 {
			first, last := p.Phases[0], p.Phases[len(p.Phases)-1]
			g.d.TotalNs = last.EndNs - first.BeginNs
			ev.set("failed_after_ns", float64(g.d.TotalNs))
		}
		ev.set("stream_bytes", float64(max(sideBytes(g.src), sideBytes(g.dst))))
		g.suggest("Fix what failed first: the error names it; `migtrace report check --allow-failed` shows what else the trace says.")
		return CauseFailed, "failed in " + phase + ": " + why
	}
	if g.d.Result == "" {
		var missing []string
		for _, m := range []*model.Side{g.src, g.dst} {
			if m != nil && m.Result == "" {
				missing = append(missing, m.Role.String())
			}
		}
		g.suggest("Collect the whole trace: a side's root span is missing (the input was cut short or the process died).")
		return CauseInsufficient, fmt.Sprintf("no result recorded for the %s: its root span is not in the input", strings.Join(missing, " and "))
	}
	if len(p.Phases) == 0 {
		g.suggest("Collect the phase spans: only root spans are in the input.")
		return CauseInsufficient, fmt.Sprintf("the %s has no phase spans in the input", p.Role)
	}
	for _, ph := range append(append([]model.PhaseTiming(nil), p.Phases...), g.srcPhases...) {
		if ph.EndNs < ph.BeginNs {
			g.badPhases = true
			g.suggest("Run `migtrace report check`: it names what else is wrong with the trace.")
			return CauseInsufficient, fmt.Sprintf("phase %s ends before it begins (begin %d ns, end %d ns): its times cannot be trusted", ph.Phase, ph.BeginNs, ph.EndNs)
		}
	}
	total := p.Phases[len(p.Phases)-1].EndNs - p.Phases[0].BeginNs
	g.d.TotalNs = total
	ev.set("total_ns", float64(total))
	if total <= 0 {
		g.suggest("Run `migtrace report check`: it names what else is wrong with the trace.")
		return CauseInsufficient, "the phases span no time"
	}

	g.analyseRAM()
	// The RTT's cost spreads over every phase, so it is weighed first.
	preRounds := int64(len(g.rounds))
	if preRounds == 0 {
		if t, ok := phaseOf(p.Phases, schema.PhaseRamPushPrePause); ok {
			preRounds = t.Rounds
		}
	}
	if g.rttNs > 0 {
		trips := g.probes + preRounds + fixedRoundTrips
		cost := trips * g.rttNs
		ev.set("rtt_ns", float64(g.rttNs))
		ev.set("round_trips", float64(trips))
		ev.set("round_trip_share", share(cost, total))
		if share(cost, total) >= dominantShare {
			g.suggest(fmt.Sprintf("Each of the %d round trips costs %s: migrate between closer hosts, or lower the round trips (fewer clock probes and pre-copy rounds).", trips, human(g.rttNs)))
			return CauseLatencyBound, fmt.Sprintf("%d protocol round trips x RTT %s = %s, %.0f%% of the total %s",
				trips, human(g.rttNs), human(cost), 100*share(cost, total), human(total))
		}
	}

	var ram int64
	for _, ph := range []schema.Phase{schema.PhaseRamPushPrePause, schema.PhaseRamPushPostPause, schema.PhaseRamPull} {
		t, _ := phaseOf(p.Phases, ph)
		ram += t.DurationNs()
	}
	ev.set("ram_ns", float64(ram))
	ev.set("ram_share", share(ram, total))
	if share(ram, total) >= dominantShare {
		return g.ramCause(ram, total)
	}

	// Another part dominates: the largest phase outside the RAM pushes.
	var top model.PhaseTiming
	for _, ph := range p.Phases {
		if model.IsRAM(ph.Phase) {
			continue
		}
		if ph.DurationNs() > top.DurationNs() {
			top = ph
		}
	}
	if top.Phase.Valid() && share(top.DurationNs(), total) >= dominantShare {
		name := evidenceName(top.Phase)
		ev.set(name+"_ns", float64(top.DurationNs()))
		ev.set(name+"_share", share(top.DurationNs(), total))
		lead := fmt.Sprintf("%s took %s, %.0f%% of the total %s", top.Phase, human(top.DurationNs()), 100*share(top.DurationNs(), total), human(total))
		switch top.Phase {
		case schema.PhaseSync:
			return g.syncCause(top.DurationNs(), lead)
		case schema.PhaseDeviceState:
			g.suggest("Look at the VMM's device export and import: DeviceState is the source exporting, sending and the destination importing the devices.")
			return CauseDeviceState, lead
		case schema.PhaseTimeData:
			g.suggest("Look at the VMM's time-data read and write (report adjustments times the destination's stages).")
			return CauseTimeData, lead
		case schema.PhaseFinish:
			return g.finishCause(top.DurationNs(), lead)
		}
		g.suggest("Look at the phase's span: no rule explains its time.")
		return CauseInsufficient, lead + "; no rule explains that phase's time"
	}
	g.suggest("Nothing to change.")
	return CauseHealthy, fmt.Sprintf("no part of the total %s takes half of it (the RAM pushes %.0f%%)", human(total), 100*share(ram, total))
}

func sideBytes(m *model.Side) int64 {
	if m == nil {
		return 0
	}
	return max(m.BytesSent, m.BytesReceived)
}

// syncCause explains a dominant Sync by its clock probes.
func (g *diag) syncCause(syncNs int64, lead string) (Cause, string) {
	if g.rttNs == 0 {
		g.suggest("Collect the destination's spans: its clock-offset estimate holds the RTT of Sync's probes.")
		return CauseInsufficient, lead + "; without the destination's clock estimate the probes' cost is not known"
	}
	cost := g.probes * g.rttNs
	g.d.Evidence.set("clock_probes", float64(g.probes))
	g.d.Evidence.set("clock_probe_ns", float64(cost))
	g.d.Evidence.set("sync_clock_probe_share", share(cost, syncNs))
	if share(cost, syncNs) >= dominantShare {
		g.suggest(fmt.Sprintf("Sync's %d clock probes cost a round trip each: fewer probes (migrate.Config.ClockProbes) shorten it.", g.probes))
		return CauseClockSync, fmt.Sprintf("%s; its %d clock probes x RTT %s = %s, %.0f%% of Sync", lead, g.probes, human(g.rttNs), human(cost), 100*share(cost, syncNs))
	}
	g.suggest("Sync's time is not in its clock probes: connecting, the handshake and creating the VM on the destination are not broken down in the trace; the destination's log times them.")
	return CauseInsufficient, fmt.Sprintf("%s; its clock probes account for only %s (%.0f%%), and the rest is not broken down in the trace", lead, human(cost), 100*share(cost, syncNs))
}

// finishCause splits a dominant Finish into the handoff checks and what
// follows the guest's resume.
func (g *diag) finishCause(finishNs int64, lead string) (Cause, string) {
	ev := &g.d.Evidence
	pauseEnd, ssEnd, ok := g.pausedSpan()
	if g.primary.Role == schema.RoleDestination {
		if !ok || g.dst.Blackout == nil {
			g.suggest("Collect the source's spans and the destination's blackout event: they place the guest's resume inside Finish.")
			return CauseInsufficient, lead + "; the input does not place the guest's resume inside it"
		}
		// The destination's Finish begins as the source's ServerState
		// message arrives, half an RTT after the source sent it; the
		// guest resumes the blackout after the pause.
		toResume := g.dst.Blackout.Ns - (ssEnd - pauseEnd) - g.rttNs/2
		after := finishNs - toResume
		ev.set("finish_to_resume_ns", float64(toResume))
		ev.set("after_resume_ns", float64(after))
		if after >= toResume {
			g.suggest("The guest already runs: the time after its resume is the destination's continuity measurement, which lengthens the migration, not the guest's pause.")
			return CauseResume, fmt.Sprintf("%s; %s of it came after the guest resumed (the continuity measurement)", lead, human(after))
		}
		g.suggest(g.checkSuggestion())
		return CauseVerificationBound, fmt.Sprintf("%s; %s of it before the guest resumed: the handoff checks", lead, human(toResume))
	}
	fin, okF := phaseOf(g.srcPhases, schema.PhaseFinish)
	if !ok || !okF || g.src.DowntimeNs == 0 {
		g.suggest("Collect the source's downtime and phases: they place the handoff inside Finish.")
		return CauseInsufficient, lead + "; the input does not place the handoff inside it"
	}
	checks := pauseEnd + g.src.DowntimeNs - fin.BeginNs
	ev.set("finish_to_handoff_ns", float64(checks))
	ev.set("after_handoff_ns", float64(finishNs-checks))
	if checks >= finishNs-checks {
		g.suggest(g.checkSuggestion())
		return CauseVerificationBound, fmt.Sprintf("%s; %s of it before the handoff: the memory checksum and the destination's checks", lead, human(checks))
	}
	g.suggest("The wait after the handoff is the destination resuming the guest: look at its resume.")
	return CauseResume, fmt.Sprintf("%s; %s of it after the handoff, waiting for the destination to resume the guest", lead, human(finishNs-checks))
}

func (g *diag) checkSuggestion() string {
	if g.dst != nil && g.dst.Continuity != nil && g.dst.Continuity.MemoryUnchecked {
		return "The memory checksum was skipped: the time is the destination's device-state and TSC checks."
	}
	return "The source's memory checksum scans all guest memory from the pause: --skip-memory-checksum takes it out of the downtime, at the cost of the destination's memory check."
}

// pausedSpan returns, on the source's monotonic clock, the end of its
// Pause phase (its downtime starts there) and of its ServerState, the
// last phase before Finish.
func (g *diag) pausedSpan() (pauseEnd, ssEnd int64, ok bool) {
	pause, ok1 := phaseOf(g.srcPhases, schema.PhasePause)
	ss, ok2 := phaseOf(g.srcPhases, schema.PhaseServerState)
	return pause.EndNs, ss.EndNs, ok1 && ok2 && ss.EndNs >= pause.EndNs
}

// analyseRAM derives from the source's rounds whether the pre-copy
// converged and what rate the wire is known to reach.
func (g *diag) analyseRAM() {
	ev := &g.d.Evidence
	rs := g.rounds
	if len(rs) == 0 {
		return
	}
	var pages, zero, wire, ns int64
	for _, r := range rs {
		pages += r.Pages
		zero += r.ZeroPages
		wire += r.WireBytes
		ns += r.RoundNs
	}
	last := rs[len(rs)-1]
	ev.set("precopy_rounds", float64(len(rs)))
	ev.set("precopy_pages", float64(pages))
	ev.set("zero_page_share", share(zero, pages))
	if ns > 0 {
		ev.set("precopy_wire_bytes_per_sec", float64(wire)*1e9/float64(ns))
		ev.set("precopy_pages_per_sec", float64(pages)*1e9/float64(ns))
	}
	ev.set("last_round_pages", float64(last.Pages))
	ev.set("last_round_dirty_pages", float64(last.DirtyPages))
	if last.Pages > 0 {
		ev.set("last_round_dirty_ratio", share(last.DirtyPages, last.Pages))
	}
	if last.RoundNs > 0 {
		ev.set("last_round_dirty_pages_per_sec", float64(last.DirtyPages)*1e9/float64(last.RoundNs))
		ev.set("last_round_pages_per_sec", float64(last.Pages)*1e9/float64(last.RoundNs))
	}
	post, hasPost := phaseOf(g.srcPhases, schema.PhaseRamPushPostPause)
	if hasPost {
		ev.set("post_pause_bytes", float64(post.Bytes))
		ev.set("post_pause_ns", float64(post.DurationNs()))
	}

	// Non-convergence: the last round re-dirtied nearly all it sent, or
	// (settings known) the limit was hit and the pause overran the target.
	if len(rs) >= 2 && last.Pages > 0 && share(last.DirtyPages, last.Pages) >= nonConvergingDirtyRatio {
		g.nonConverging = true
		g.why = append(g.why, fmt.Sprintf("its last pre-copy round (%d of %d) sent %d pages and left %d dirty (%.0f%%): the guest dirtied memory about as fast as it was sent",
			len(rs), len(rs), last.Pages, last.DirtyPages, 100*share(last.DirtyPages, last.Pages)))
	} else if s := g.set; s.MaxRounds != nil && s.DowntimeTarget != nil && hasPost &&
		int64(len(rs)) >= *s.MaxRounds && post.DurationNs() > int64(*s.DowntimeTarget) {
		g.nonConverging = true
		g.why = append(g.why, fmt.Sprintf("the pre-copy hit its limit of %d rounds and the paused push of %d pages took %s, over the %v target",
			*s.MaxRounds, post.Pages, human(post.DurationNs()), *s.DowntimeTarget))
	}

	// The wire's rate: the cap when known, else what the rounds prove.
	if s := g.set.MaxBandwidth; s != nil && *s > 0 {
		g.linkRate = float64(*s)
		if ns > 0 && float64(wire)*1e9/float64(ns) >= linkBoundUtilisation*g.linkRate {
			g.linkShown = true
			ev.set("link_utilisation_ratio", float64(wire)*1e9/float64(ns)/g.linkRate)
		}
		return
	}
	g.linkShown = g.sustainedRoundsShowLink()
	if g.linkShown {
		return
	}
	best := 0.0
	for _, r := range rs {
		best = max(best, float64(r.WireBytes)*1e9/(float64(r.RoundNs)+capBurstNs))
	}
	if hasPost && post.Bytes > 0 && post.DurationNs() > 0 {
		best = max(best, float64(post.Bytes)*1e9/(float64(post.DurationNs())+capBurstNs))
	}
	if best > 0 {
		g.linkRate = best
		ev.set("link_lower_bound_bytes_per_sec", best)
	}
}

// sustainedRoundsShowLink looks for two sustained rounds whose zero-page
// shares differ while their wire rates agree: the wire, not the scan,
// set their pace. It sets linkRate to their wire rate.
func (g *diag) sustainedRoundsShowLink() bool {
	type rr struct{ zero, wire float64 }
	var sus []rr
	var wire, ns int64
	for _, r := range g.rounds {
		wire += r.WireBytes
		ns += r.RoundNs
		if r.RoundNs >= sustainedRoundNs && r.Pages > 0 {
			sus = append(sus, rr{share(r.ZeroPages, r.Pages), float64(r.WireBytes) * 1e9 / float64(r.RoundNs)})
		}
	}
	if ns == 0 {
		return false
	}
	overall := float64(wire) * 1e9 / float64(ns)
	for i := range sus {
		for j := i + 1; j < len(sus); j++ {
			a, b := sus[i], sus[j]
			hi, lo := max(a.wire, b.wire), min(a.wire, b.wire)
			if math.Abs(a.zero-b.zero) >= zeroShareSpread && lo > 0 && hi/lo <= wireRateSpread && overall >= linkBoundUtilisation*hi {
				g.linkRate = hi
				ev := &g.d.Evidence
				ev.set("link_bytes_per_sec", hi)
				ev.set("sustained_zero_share_spread_ratio", math.Abs(a.zero-b.zero))
				ev.set("sustained_wire_rate_spread_ratio", hi/lo)
				return true
			}
		}
	}
	return false
}

// ramCause explains a total dominated by the RAM pushes.
func (g *diag) ramCause(ram, total int64) (Cause, string) {
	lead := fmt.Sprintf("the RAM pushes took %s, %.0f%% of the total %s", human(ram), 100*share(ram, total), human(total))
	if len(g.rounds) == 0 {
		g.suggest("Collect the source's spans: its round events tell a link limit from a dirtying guest.")
		return CauseInsufficient, lead + "; the source's pre-copy rounds are not in the input"
	}
	ev := &g.d.Evidence
	if g.nonConverging {
		g.suggest("The guest dirties memory about as fast as the link moves it: raise --max-bandwidth or give it a faster link, slow the guest's writes (auto-converge), or accept the longer pause a higher --downtime-target allows.")
		return CauseNonConverging, lead + "; " + strings.Join(g.why, "; ")
	}
	wireRate, _ := ev.Get("precopy_wire_bytes_per_sec")
	if g.linkShown {
		if s := g.set.MaxBandwidth; s != nil && *s > 0 {
			g.suggest(fmt.Sprintf("The pre-copy ran at the %s cap: raise --max-bandwidth (or migrate over a faster link) to shorten it.", rate(float64(*s))))
			return CauseLinkBound, fmt.Sprintf("%s at %s, %.0f%% of the %s max bandwidth, converging in %s",
				lead, rate(wireRate), 100*wireRate/float64(*s), rate(float64(*s)), plural(len(g.rounds), "round"))
		}
		g.suggest(fmt.Sprintf("The wire's limit is about %s: raise --max-bandwidth if one is set, else migrate over a faster link.", rate(g.linkRate)))
		return CauseLinkBound, fmt.Sprintf("%s at %s; rounds of different zero-page shares all ran at about %s, so the wire (a cap or the link; the max bandwidth is not recorded) set the pace, converging in %s",
			lead, rate(wireRate), rate(g.linkRate), plural(len(g.rounds), "round"))
	}
	if g.linkRate > 0 {
		var off, ns int64
		for _, r := range g.rounds {
			off += max(0, r.RoundNs-int64(float64(r.WireBytes)*1e9/g.linkRate)-g.rttNs)
			ns += r.RoundNs
		}
		ev.set("off_wire_share", share(off, ns))
		if share(off, ns) >= dominantShare {
			zs, _ := ev.Get("zero_page_share")
			pps, _ := ev.Get("precopy_pages_per_sec")
			g.suggest("The link is not the limit, so more bandwidth will not help: the sender's page reads are (and, with many zero pages, scanning pages that carry nothing); a faster scan or tracking never-written pages would.")
			return CauseScanBound, fmt.Sprintf("%s, yet %.0f%% of the pre-copy's round time was off the wire (it ran at %s; the wire reached %s): %.0f pages/s scanned, %.0f%% of them zero",
				lead, 100*share(off, ns), rate(wireRate), rate(g.linkRate), pps, 100*zs)
		}
	}
	g.suggest("Nothing to change: the time is the guest's memory moving once plus what it dirtied.")
	return CauseHealthy, fmt.Sprintf("%s: the migration's work, converging in %s (the last left %s dirty); nothing in the trace shows a limit beyond it",
		lead, plural(len(g.rounds), "round"), plural(int(g.rounds[len(g.rounds)-1].DirtyPages), "page"))
}

// downtimeCause applies CauseRules to the guest's pause.
func (g *diag) downtimeCause() (Cause, string) {
	ev := &g.d.Evidence
	_, paused := phaseOf(g.srcPhases, schema.PhasePause)
	if g.d.Result == schema.ResultFailure {
		if !paused {
			return CauseNotPaused, "the migration failed before the source paused the guest"
		}
		g.suggest("After a failure past the pause the source resumed the guest: its pause lasted until then.")
		return CauseFailed, "the migration failed after the source paused the guest; the source resumed it"
	}
	if g.d.Result == "" {
		return CauseInsufficient, "no result recorded"
	}
	if g.badPhases {
		return CauseInsufficient, "a phase ends before it begins"
	}
	window, what := g.d.BlackoutNs, "blackout"
	if window == 0 && g.src != nil {
		window, what = g.src.DowntimeNs, "downtime"
	}
	if window <= 0 {
		g.suggest("Collect the source's spans or the destination's blackout event: they time the pause.")
		return CauseInsufficient, "neither the source's downtime nor the destination's blackout is in the input"
	}
	ev.set("pause_window_ns", float64(window))
	if t := g.set.DowntimeTarget; t != nil && window <= int64(*t) {
		return CauseHealthy, fmt.Sprintf("the %s of %s met the %v target", what, human(window), *t)
	}
	if g.rttNs > 0 {
		cost := int64(pausedRoundTrips) * g.rttNs
		ev.set("paused_round_trip_share", share(cost, window))
		if share(cost, window) >= dominantShare {
			g.suggest(fmt.Sprintf("The pause holds %d round trips of %s: migrate between closer hosts.", pausedRoundTrips, human(g.rttNs)))
			return CauseLatencyBound, fmt.Sprintf("%d round trips x RTT %s = %s, %.0f%% of the %s %s",
				pausedRoundTrips, human(g.rttNs), human(cost), 100*share(cost, window), what, human(window))
		}
	}
	pauseEnd, ssEnd, ok := g.pausedSpan()
	if !ok {
		g.suggest("Collect the source's phases: they break the pause down.")
		return CauseInsufficient, fmt.Sprintf("the %s of %s is not broken down: the source's Pause or ServerState phase is not in the input", what, human(window))
	}

	type part struct {
		cause Cause
		name  string
		ns    int64
	}
	var parts []part
	for _, ph := range []struct {
		p     schema.Phase
		cause Cause
	}{{schema.PhaseRamPushPostPause, ""}, {schema.PhaseTimeData, CauseTimeData}, {schema.PhaseDeviceState, CauseDeviceState},
		{schema.PhaseRamPull, CauseInsufficient}, {schema.PhaseServerState, CauseInsufficient}} {
		if t, ok := phaseOf(g.srcPhases, ph.p); ok {
			parts = append(parts, part{ph.cause, ph.p.String(), t.DurationNs()})
		}
	}
	// What follows the source's phases: its wait for the memory checksum,
	// the destination's checks, and (in the blackout) the resume.
	tail := window - (ssEnd - pauseEnd)
	var checks, resume, unsplit int64
	known := false
	if g.dst != nil && g.dst.SourceDowntimeNs > 0 {
		wait := g.dst.SourceDowntimeNs - (ssEnd - pauseEnd)
		ev.set("checksum_wait_ns", float64(wait))
		checks, known = wait, true
		if g.src != nil && g.src.DowntimeNs > 0 {
			destChecks := g.src.DowntimeNs - g.dst.SourceDowntimeNs
			ev.set("destination_checks_ns", float64(destChecks))
			checks += destChecks
			if what == "blackout" {
				resume = window - g.src.DowntimeNs
				ev.set("handoff_to_resume_ns", float64(resume))
			}
		} else {
			unsplit = tail - checks
		}
	}
	if !known {
		// Source only: its Finish up to the handoff is the checksum wait,
		// the Finish message and the destination's checks.
		checks = tail
	}
	ev.set("handoff_checks_ns", float64(checks))
	parts = append(parts, part{CauseVerificationBound, "the handoff checks", checks}, part{CauseResume, "the destination's resume", resume},
		part{CauseInsufficient, "the destination's checks and resume (the source's own record splits them)", unsplit})
	var top part
	for _, pt := range parts {
		if pt.ns > top.ns {
			top = pt
		}
	}
	if share(top.ns, window) < dominantShare {
		return CauseHealthy, fmt.Sprintf("no part of the %s %s takes half of it (the largest, %s, %s)", what, human(window), top.name, human(top.ns))
	}
	lead := fmt.Sprintf("%s took %s, %.0f%% of the %s %s", top.name, human(top.ns), 100*share(top.ns, window), what, human(window))
	switch top.cause {
	case "":
		return g.postPauseCause(lead)
	case CauseTimeData:
		g.suggest("Look at the VMM's time-data read and write (report adjustments times the destination's stages).")
	case CauseDeviceState:
		g.suggest("Look at the VMM's device export and import: they run while the guest is paused.")
	case CauseVerificationBound:
		g.suggest(g.checkSuggestion())
	case CauseResume:
		g.suggest("Look at the destination's resume of the guest after the handoff.")
	default:
		g.suggest("No rule explains that part of the pause.")
	}
	return top.cause, lead
}

// postPauseCause explains a pause dominated by the final RAM push.
func (g *diag) postPauseCause(lead string) (Cause, string) {
	ev := &g.d.Evidence
	post, _ := phaseOf(g.srcPhases, schema.PhaseRamPushPostPause)
	if g.nonConverging {
		g.suggest("The pause carried what the pre-copy could not converge on: a lower --downtime-target does not help a guest that dirties as fast as the link sends.")
		return CauseNonConverging, fmt.Sprintf("%s pushing %d pages the pre-copy left: %s", lead, post.Pages, strings.Join(g.why, "; "))
	}
	if post.DurationNs() <= 0 || post.Bytes < 0 {
		return CauseInsufficient, lead + "; its duration or bytes are not a measurement"
	}
	postRate := float64(post.Bytes) * 1e9 / float64(post.DurationNs())
	ev.set("post_pause_bytes_per_sec", postRate)
	if g.linkShown && postRate >= linkBoundUtilisation*g.linkRate {
		g.suggest("The final push ran at the wire's limit: a lower --downtime-target leaves less for the pause (more pre-copy rounds), a higher --max-bandwidth sends it faster.")
		return CauseLinkBound, fmt.Sprintf("%s pushing %d pages at %s, the wire's rate", lead, post.Pages, rate(postRate))
	}
	// The pre-copy sized what it left for the pause by its last round's
	// rate: a final push at half that rate or more went as planned.
	if n := len(g.rounds); n > 0 && g.rounds[n-1].RoundNs > 0 {
		last := g.rounds[n-1]
		lastRate := float64(last.WireBytes) * 1e9 / float64(last.RoundNs)
		ev.set("post_pause_to_last_round_rate_ratio", postRate/lastRate)
		if postRate >= lastRate/2 {
			g.suggest("The pause is the final push the pre-copy planned: a lower --downtime-target shortens it at the cost of more rounds.")
			return CauseHealthy, fmt.Sprintf("%s pushing the %d pages the converged pre-copy left, at %s (its last round ran at %s), as planned",
				lead, post.Pages, rate(postRate), rate(lastRate))
		}
	}
	if g.linkRate > 0 {
		off := max(0, post.DurationNs()-int64(float64(post.Bytes)*1e9/g.linkRate)-g.rttNs)
		ev.set("post_pause_off_wire_share", share(off, post.DurationNs()))
		if share(off, post.DurationNs()) >= dominantShare {
			g.suggest("The final push is not wire-bound: the sender's page reads (sharing the CPU with the memory checksum's scan) are.")
			return CauseScanBound, fmt.Sprintf("%s pushing %d pages at %s, %.0f%% of it off the wire (which reached %s)",
				lead, post.Pages, rate(postRate), 100*share(off, post.DurationNs()), rate(g.linkRate))
		}
	}
	g.suggest("Record the max bandwidth (or give --max-bandwidth): without the wire's rate the final push's limit cannot be told.")
	return CauseInsufficient, fmt.Sprintf("%s pushing %d pages at %s; the wire's rate is not known, so whether the link or the sender limited it cannot be told",
		lead, post.Pages, rate(postRate))
}
