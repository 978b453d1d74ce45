package scenarios

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/lab"
	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
)

// Env is what a scenario needs from the test that runs it.
type Env struct {
	// Binary is the migtrace executable every host serves
	// (servertest.Binary).
	Binary string
	// Dir receives the trace files; a new t.TempDir() when empty.
	Dir string
}

// Run is what one scenario did.
type Run struct {
	// Scenario names it; each host's serve writes Dir/Scenario-HOST.jsonl.
	Scenario string
	Dir      string
	// Commands are how the scenario set its hosts up and what they ran,
	// in order: the lab's hosts and links as comments, then `migtrace`
	// command lines, "[HOST]" for those run inside a host. A migration is
	// the POST /v1/migrate that `migtrace migrate --from SOURCE --to
	// DESTINATION` makes, from the machine itself, which reaches each
	// host's API over its management link.
	Commands []string
	// Migrations are the migrations it made, in order.
	Migrations []*Migration
}

// Migration is one migration of a Run.
type Migration struct {
	// Label says what the migration shows, e.g. "with auto-converge".
	Label string
	ID    string
	// SourceHost and DestinationHost are the lab hosts' names.
	SourceHost, DestinationHost string
	// SourceTrace and DestinationTrace are the trace files of the two
	// serves; a serve's file holds every migration it took part in.
	SourceTrace, DestinationTrace string
	// Source and Destination are each host's GET /v1/instance once the
	// migration had ended on both (for a handoff across a partition, once
	// it had settled).
	Source, Destination server.InstanceStatus
	// ClockOffset is the destination's wall clock minus the source's as
	// the scenario set it (--sim-wallclock-offset); 0 where it set none.
	ClockOffset time.Duration
	// Fault is when the scenario cut the link or partitioned the hosts
	// during the migration; Healed when a partition healed, and Settled
	// how long after that both sides had ended the migration with the
	// guest running on exactly one of them (zero without a partition).
	Fault, Healed time.Time
	Settled       time.Duration
}

// RunsOn is the host whose serve runs the guest once the migration ended:
// the destination's or the source's name, or "" if neither or both do.
func (m *Migration) RunsOn() string {
	src, dst := m.Source.State == server.StateRunning, m.Destination.State == server.StateRunning
	switch {
	case src && !dst:
		return m.SourceHost
	case dst && !src:
		return m.DestinationHost
	}
	return ""
}

// Traces returns every trace file of the run, each once, sorted.
func (r *Run) Traces() []string {
	var out []string
	for _, m := range r.Migrations {
		out = append(out, m.SourceTrace, m.DestinationTrace)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Migration returns the run's migration labelled label, or nil.
func (r *Run) Migration(label string) *Migration {
	for _, m := range r.Migrations {
		if m.Label == label {
			return m
		}
	}
	return nil
}

// world is one scenario's lab, hosts and record.
type world struct {
	t      testing.TB
	ctx    context.Context
	lab    *lab.Lab
	run    *Run
	traces map[*lab.Host]string
	hosts  []*lab.Host
}

// begin opens the lab of a scenario named name, bounded by timeout.
func begin(t testing.TB, env Env, name string, timeout time.Duration) *world {
	t.Helper()
	if env.Binary == "" {
		t.Fatal("scenarios: Env.Binary is empty")
	}
	dir := env.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	l := lab.ForTest(t, lab.Config{Binary: env.Binary})
	return &world{t: t, ctx: ctx, lab: l, run: &Run{Scenario: name, Dir: dir}, traces: map[*lab.Host]string{}}
}

func (w *world) note(format string, args ...any) {
	w.run.Commands = append(w.run.Commands, fmt.Sprintf(format, args...))
}

func (w *world) host(name string, opts lab.HostOptions) *lab.Host {
	w.t.Helper()
	h, err := w.lab.AddHost(w.ctx, name, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	if opts.MonotonicOffset != 0 {
		w.note("# host %s: CLOCK_MONOTONIC %+v ahead of the machine's (a time namespace)", name, opts.MonotonicOffset)
	} else {
		w.note("# host %s", name)
	}
	w.hosts = append(w.hosts, h)
	return h
}

func (w *world) link(a, b *lab.Host, opts lab.LinkOptions) *lab.Link {
	w.t.Helper()
	k, err := w.lab.Link(w.ctx, a, b, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	shaping := "unshaped"
	if opts.Rate > 0 {
		shaping = fmt.Sprintf("tbf %d B/s each way", opts.Rate)
	}
	w.note("# link %s %s <-> %s %s (veth, %s)", a.Name(), k.Addr(a), b.Name(), k.Addr(b), shaping)
	return k
}

func (w *world) proxy(client, srv *lab.Host, opts lab.ProxyOptions) *lab.Proxy {
	w.t.Helper()
	p, err := w.lab.Proxy(w.ctx, client, srv, lab.ServePort, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	w.note("# proxy (toxiproxy) %s -> %s's serve at %s: latency %v each way, +%v %s->%s, +%v %s->%s",
		client.Name(), srv.Name(), p.Addr(), opts.Latency, opts.UpstreamDelay, client.Name(), srv.Name(),
		opts.DownstreamDelay, srv.Name(), client.Name())
	return p
}

// serve starts h's serve with args and --trace-file in the run's
// directory.
func (w *world) serve(h *lab.Host, args ...string) {
	w.t.Helper()
	trace := filepath.Join(w.run.Dir, w.run.Scenario+"-"+h.Name()+".jsonl")
	args = append(args, "--trace-file", trace)
	if err := h.Serve(w.ctx, args...); err != nil {
		w.t.Fatal(err)
	}
	w.traces[h] = trace
	w.note("[%s] migtrace serve --listen 0.0.0.0:%d --insecure --name %s %s", h.Name(), lab.ServePort, h.Name(), strings.Join(args, " "))
}

// settle waits until h's guest has run for d since it booted, by its
// TSC: a sim guest's TSC counts from 0 at boot at the host's TSC
// frequency, which this process reads as serve does. How much memory the
// guest has written, which round 0 sends, follows from it.
func (w *world) settle(h *lab.Host, d time.Duration) {
	w.t.Helper()
	want := uint64(d.Seconds() * float64(sim.HostTSCFrequency()))
	for {
		st, err := h.Status(w.ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		if st.GuestTSC >= want {
			return
		}
		select {
		case <-w.ctx.Done():
			w.t.Fatalf("host %s: the guest has not run %v: %v", h.Name(), d, w.ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// start asks dst to pull the VM from src, which it reaches at source.
func (w *world) start(label string, src, dst *lab.Host, source string) *Migration {
	w.t.Helper()
	id, err := dst.Migrate(w.ctx, source)
	if err != nil {
		w.t.Fatal(err)
	}
	w.note("migtrace migrate --from %s --to %s   # %s: migration %s", source, dst.APIAddr(), label, id)
	m := &Migration{Label: label, ID: id, SourceHost: src.Name(), DestinationHost: dst.Name(),
		SourceTrace: w.traces[src], DestinationTrace: w.traces[dst]}
	w.run.Migrations = append(w.run.Migrations, m)
	return m
}

// wait waits until m has ended on both sides and records their statuses.
func (w *world) wait(m *Migration, src, dst *lab.Host) {
	w.t.Helper()
	var err error
	if m.Destination, err = dst.WaitMigration(w.ctx, m.ID); err != nil {
		w.t.Fatal(err)
	}
	if m.Source, err = src.WaitMigration(w.ctx, m.ID); err != nil {
		w.t.Fatal(err)
	}
}

// migrate runs one migration to its end on both sides.
func (w *world) migrate(label string, src, dst *lab.Host, source string) *Migration {
	w.t.Helper()
	m := w.start(label, src, dst, source)
	w.wait(m, src, dst)
	return m
}

// finish stops every serve with SIGTERM, which flushes its trace file.
func (w *world) finish() *Run {
	w.t.Helper()
	for _, h := range w.hosts {
		if h.Pid() == 0 {
			continue
		}
		if err := h.Stop(w.ctx); err != nil {
			w.t.Fatal(err)
		}
	}
	return w.run
}

// The seed's clocks: propolis PR #359's worked example, whose destination
// hrtime is 9.2 s behind the source's.
const (
	SeedSourceMonotonic      = 20 * time.Second
	SeedDestinationMonotonic = 10800 * time.Millisecond
)

// SeedClocks migrates between hosts whose CLOCK_MONOTONIC differ by the
// seed's 9.2 s (the destination behind) and whose wall clocks agree.
func SeedClocks(t testing.TB, env Env) *Run {
	t.Helper()
	if err := lab.TimeNamespaces(); err != nil {
		t.Skip(err)
	}
	w := begin(t, env, "seedclocks", time.Minute)
	src := w.host("src", lab.HostOptions{MonotonicOffset: SeedSourceMonotonic})
	dst := w.host("dst", lab.HostOptions{MonotonicOffset: SeedDestinationMonotonic})
	k := w.link(src, dst, lab.LinkOptions{})
	w.serve(dst, "--memory", "32MiB")
	w.serve(src, "--boot", "--memory", "32MiB", "--dirty-rate", "8MiB")
	w.migrate("seed's clocks", src, dst, k.ServeAddr(src))
	return w.finish()
}

// The bandwidth scenario's link and guest.
const (
	BandwidthRate = 12_500_000 // bytes/s: 100 Mbit/s
	// BandwidthSettle is how long the guest dirties memory before the
	// migration: 12 MiB at 8 MiB/s, which round 0 carries in over a
	// second, long enough for the link's rate to show.
	BandwidthSettle = 1500 * time.Millisecond
	// BandwidthDowntime is the downtime target: the guest dirties 70 %
	// of what the link carries, so each round's dirty set is 70 % of the
	// last, and pre-copy reaches this in about six rounds.
	BandwidthDowntime = 200 * time.Millisecond
)

// Bandwidth migrates a 256 MiB guest dirtying 8 MiB/s over a 100 Mbit/s
// link: the guest dirties less than the link carries, so the rounds
// shrink, bound by the link, until the rest fits the downtime target.
func Bandwidth(t testing.TB, env Env) *Run {
	t.Helper()
	w := begin(t, env, "bandwidth", 2*time.Minute)
	src := w.host("src", lab.HostOptions{})
	dst := w.host("dst", lab.HostOptions{})
	k := w.link(src, dst, lab.LinkOptions{Rate: BandwidthRate})
	w.serve(dst, "--memory", "256MiB")
	w.serve(src, "--boot", "--memory", "256MiB", "--dirty-rate", "8MiB", "--downtime-target", BandwidthDowntime.String())
	w.settle(src, BandwidthSettle)
	w.migrate("100 Mbit/s", src, dst, k.ServeAddr(src))
	return w.finish()
}

// The auto-converge scenario: a 32 MiB guest dirtying 8 MiB/s over a
// 4 MB/s link, a 500 ms downtime target and at most 4 rounds.
const (
	AutoConvergeRate     = 4_000_000 // bytes/s
	AutoConvergeDowntime = 500 * time.Millisecond
	AutoConvergeRounds   = 4
	// AutoConvergeSettle is how long the guest runs before the
	// migration. Round 0 then carries about 1.3 MB, in a third of a
	// second, and the guest dirties about 2.8 MB meanwhile: over the 2 MB
	// the target allows at the link's rate, so that without a throttle
	// pre-copy never converges; throttled at 90 % after round 1, round
	// 2's dirty set is about 1.2 MB, under it.
	AutoConvergeSettle = 110 * time.Millisecond
)

// Labels of the auto-converge scenario's migrations.
const (
	LabelWithoutAutoConverge = "without auto-converge"
	LabelWithAutoConverge    = "with auto-converge"
)

// AutoConverge migrates a guest that dirties memory twice as fast as the
// link carries it, twice, between two fresh pairs of hosts: without
// auto-converge the rounds run to the limit and the downtime is seconds;
// with it (--cpu-throttle-initial 90: at QEMU's 20 % it would take a
// dozen rounds to matter) the guest is throttled after round 1 and the
// downtime holds.
func AutoConverge(t testing.TB, env Env) *Run {
	t.Helper()
	w := begin(t, env, "autoconverge", 2*time.Minute)
	for i, label := range []string{LabelWithoutAutoConverge, LabelWithAutoConverge} {
		src := w.host(fmt.Sprintf("src%d", i), lab.HostOptions{})
		dst := w.host(fmt.Sprintf("dst%d", i), lab.HostOptions{})
		k := w.link(src, dst, lab.LinkOptions{Rate: AutoConvergeRate})
		args := []string{"--boot", "--memory", "32MiB", "--dirty-rate", "8MiB",
			"--downtime-target", AutoConvergeDowntime.String(), "--max-rounds", fmt.Sprint(AutoConvergeRounds)}
		if label == LabelWithAutoConverge {
			args = append(args, "--auto-converge", "--cpu-throttle-initial", "90")
		}
		// The destination first, so that the guest runs no longer than
		// the settle before the migration.
		w.serve(dst, "--memory", "32MiB")
		w.serve(src, args...)
		w.settle(src, AutoConvergeSettle)
		w.migrate(label, src, dst, k.ServeAddr(src))
	}
	return w.finish()
}

// LatencyRTT is the latency scenario's round trip: 10 ms each way.
const LatencyRTT = 20 * time.Millisecond

// Latency migrates a small, quiet guest through a proxy adding 10 ms each
// way, so that every round trip of the protocol shows in its phase.
func Latency(t testing.TB, env Env) *Run {
	t.Helper()
	w := begin(t, env, "latency", time.Minute)
	src := w.host("src", lab.HostOptions{})
	dst := w.host("dst", lab.HostOptions{})
	p := w.proxy(dst, src, lab.ProxyOptions{Latency: LatencyRTT / 2})
	w.serve(dst, "--memory", "32MiB")
	w.serve(src, "--boot", "--memory", "32MiB", "--dirty-rate", "1MiB")
	w.migrate("20 ms round trip", src, dst, p.Addr())
	return w.finish()
}

// The clock-skew scenario: the destination's wall clock ahead by
// SkewOffset, over a direct link and over a path delayed one way only.
const (
	SkewOffset = 3 * time.Millisecond
	// SkewDelay is added from the destination to the source, none back.
	SkewDelay = 10 * time.Millisecond
)

// Labels of the clock-skew scenario's migrations: the path, and whether
// the destination corrects the delta by its estimate of the offset.
const (
	LabelDirect          = "direct link"
	LabelDirectCorrected = "direct link, --clock-skew-correction"
	LabelOneWay          = "10 ms one way"
	LabelOneWayCorrected = "10 ms one way, --clock-skew-correction"
)

// ClockSkew migrates four times, each between a fresh pair of hosts whose
// destination's wall clock is 3 ms ahead (--sim-wallclock-offset): over a
// direct link and over a proxy delaying the destination-to-source way by
// 10 ms, each with and without --clock-skew-correction. The one-way delay
// is what the offset estimate cannot see: it assumes a symmetric path,
// and is wrong by half the asymmetry, which its error bound (half the
// round trip) covers.
func ClockSkew(t testing.TB, env Env) *Run {
	t.Helper()
	w := begin(t, env, "clockskew", 2*time.Minute)
	cases := []struct {
		label            string
		oneWay, corrects bool
	}{
		{LabelDirect, false, false}, {LabelDirectCorrected, false, true},
		{LabelOneWay, true, false}, {LabelOneWayCorrected, true, true},
	}
	for i, c := range cases {
		src := w.host(fmt.Sprintf("src%d", i), lab.HostOptions{})
		dst := w.host(fmt.Sprintf("dst%d", i), lab.HostOptions{})
		var source string
		if c.oneWay {
			source = w.proxy(dst, src, lab.ProxyOptions{UpstreamDelay: SkewDelay}).Addr()
		} else {
			source = w.link(src, dst, lab.LinkOptions{}).ServeAddr(src)
		}
		args := []string{"--memory", "32MiB", "--sim-wallclock-offset", SkewOffset.String()}
		if c.corrects {
			args = append(args, "--clock-skew-correction")
		}
		w.serve(dst, args...)
		w.serve(src, "--boot", "--memory", "32MiB", "--dirty-rate", "4MiB")
		m := w.migrate(c.label, src, dst, source)
		m.ClockOffset = SkewOffset
	}
	return w.finish()
}

// The link-cut scenario: a 64 MiB guest over an 8 MB/s link, with a 2 s
// I/O timeout on both sides; the link is cut once CutAfterBytes have
// crossed it in round 0.
const (
	LinkCutRate      = 8_000_000
	LinkCutSettle    = 2 * time.Second // 8 MiB written: round 0 takes a second
	LinkCutIOTimeout = 2 * time.Second
	CutAfterBytes    = 2 << 20
)

// Labels of the link-cut scenario's migrations.
const (
	LabelCut   = "link cut during the RAM push"
	LabelRetry = "retry over a new link"
)

// LinkCut cuts the link (deletes the veth pair) in the middle of round 0:
// both sides' reads and writes time out, the source's guest, never
// paused, keeps running, the destination discards what it received. A new
// link replaces the cut one, and the same request over it succeeds.
func LinkCut(t testing.TB, env Env) *Run {
	t.Helper()
	w := begin(t, env, "linkcut", 2*time.Minute)
	src := w.host("src", lab.HostOptions{})
	dst := w.host("dst", lab.HostOptions{})
	opts := lab.LinkOptions{Rate: LinkCutRate}
	k := w.link(src, dst, opts)
	timeout := LinkCutIOTimeout.String()
	w.serve(dst, "--memory", "64MiB", "--io-timeout", timeout)
	w.serve(src, "--boot", "--memory", "64MiB", "--dirty-rate", "4MiB", "--io-timeout", timeout)
	w.settle(src, LinkCutSettle)
	m := w.start(LabelCut, src, dst, k.ServeAddr(src))
	for {
		st, err := dst.Status(w.ctx)
		if err != nil {
			t.Fatal(err)
		}
		mig := st.Migration
		if mig != nil && mig.ID == m.ID && mig.Result != server.ResultRunning {
			t.Fatalf("the migration ended (%s: %s) before the link was cut", mig.Result, mig.Error)
		}
		if mig != nil && mig.Progress != nil && mig.Progress.Phase == "RamPushPrePause" && mig.Progress.Bytes >= CutAfterBytes {
			break
		}
		select {
		case <-w.ctx.Done():
			t.Fatalf("the RAM push did not pass %d bytes: %v", CutAfterBytes, w.ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := k.Cut(w.ctx); err != nil {
		t.Fatal(err)
	}
	m.Fault = time.Now()
	w.note("# link %s cut: the veth pair deleted, in round 0", k.Interface())
	w.wait(m, src, dst)
	k2 := w.link(src, dst, opts)
	w.migrate(LabelRetry, src, dst, k2.ServeAddr(src))
	return w.finish()
}

// The handoff-partition scenario: a 1 s I/O timeout on both sides and a
// partition of PartitionFor, long beside it, so that neither stream
// survives and the handoff is settled through the servers' APIs once the
// partition heals.
const (
	PartitionIOTimeout = time.Second
	PartitionFor       = 3 * time.Second
)

// HandoffCut is where a partition across the handoff begins: just before
// Frame passes the path in direction Dir, once the source's Finish has.
type HandoffCut struct {
	Name  string
	Frame wire.Type
	Dir   Direction
	// RunsOn is the side, "source" or "destination", that must run the
	// guest in the end.
	RunsOn string
}

// HandoffCuts are the partitions across the handoff: the destination's
// Okay lost (the source never commits: it resumes, and the destination
// discards its copy once it can ask), the source's Handoff lost (the
// source committed: the destination resumes once it can ask), and the
// destination's Resumed lost (the source learns it from the
// destination's API).
var HandoffCuts = []HandoffCut{
	{"Okay lost", wire.TypeOkay, ToSource, "source"},
	{"Handoff lost", wire.TypeHandoff, ToDestination, "destination"},
	{"Resumed lost", wire.TypeResumed, ToSource, "destination"},
}

// HandoffPartition partitions the two hosts at cut, for PartitionFor,
// then heals, and waits until both sides have ended the migration with
// the guest running on exactly one of them. The destination reaches the
// source through a Gate in its own namespace, which holds the stream (and
// the destination's handoff queries) from the cut frame on; the link
// itself is partitioned too, which stops the source's queries.
func HandoffPartition(t testing.TB, env Env, cut HandoffCut) *Run {
	t.Helper()
	name := "partition-" + strings.ToLower(strings.Fields(cut.Name)[0])
	w := begin(t, env, name, 2*time.Minute)
	src := w.host("src", lab.HostOptions{})
	dst := w.host("dst", lab.HostOptions{})
	k := w.link(src, dst, lab.LinkOptions{})
	timeout := PartitionIOTimeout.String()
	w.serve(dst, "--memory", "32MiB", "--io-timeout", timeout)
	w.serve(src, "--boot", "--memory", "32MiB", "--dirty-rate", "4MiB", "--io-timeout", timeout)

	ln, err := dst.Listen(w.ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		sawFinish bool
		cutErr    error
		fault     time.Time
	)
	partitioned := make(chan struct{})
	var g *Gate
	g = NewGate(ln, func(ctx context.Context) (net.Conn, error) {
		return dst.Dial(ctx, "tcp", k.ServeAddr(src))
	}, func(d Direction, typ wire.Type) {
		mu.Lock()
		defer mu.Unlock()
		if d == ToDestination && typ == wire.TypeFinish {
			sawFinish = true
		}
		if !sawFinish || d != cut.Dir || typ != cut.Frame || partitioned == nil {
			return
		}
		g.Hold()
		cutErr = k.Partition(w.ctx)
		fault = time.Now()
		close(partitioned)
		partitioned = nil
	})
	t.Cleanup(func() { _ = g.Close() })
	w.note("# gate (Go, in %s) at %s -> %s: holds every connection, and the link is partitioned, from the first %v %s after Finish",
		dst.Name(), g.Addr(), k.ServeAddr(src), cut.Frame, cut.Dir)

	mu.Lock()
	wait := partitioned
	mu.Unlock()
	m := w.start(cut.Name, src, dst, g.Addr())
	select {
	case <-wait:
	case <-w.ctx.Done():
		t.Fatalf("no %v passed %s: %v", cut.Frame, cut.Dir, w.ctx.Err())
	}
	mu.Lock()
	err, m.Fault = cutErr, fault
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(PartitionFor)
	if err := k.Heal(w.ctx); err != nil {
		t.Fatal(err)
	}
	g.Release()
	m.Healed = time.Now()
	w.note("# partitioned for %v, then healed", PartitionFor)
	for {
		s, serr := src.Status(w.ctx)
		d, derr := dst.Status(w.ctx)
		if serr == nil && derr == nil && ended(s, m.ID) && ended(d, m.ID) {
			m.Source, m.Destination = s, d
			if m.RunsOn() != "" {
				m.Settled = time.Since(m.Healed)
				break
			}
		}
		select {
		case <-w.ctx.Done():
			t.Fatalf("the handoff did not settle: source %+v (%v), destination %+v (%v): %v", s, serr, d, derr, w.ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return w.finish()
}

// ended reports whether migration id has ended on the server st is of.
func ended(st server.InstanceStatus, id string) bool {
	m := st.Migration
	return m != nil && m.ID == id && m.Result != server.ResultRunning && st.State != server.StateHandoffPending
}

// Scenario is one scenario, for a test that runs them all.
type Scenario struct {
	Name string
	Run  func(testing.TB, Env) *Run
}

// All returns every scenario, the handoff partition once per cut.
func All() []Scenario {
	out := []Scenario{
		{"seed's clocks", SeedClocks},
		{"100 Mbit/s", Bandwidth},
		{"auto-converge", AutoConverge},
		{"20 ms round trip", Latency},
		{"clock skew", ClockSkew},
		{"link cut", LinkCut},
	}
	for _, c := range HandoffCuts {
		out = append(out, Scenario{"partition across the handoff, " + c.Name,
			func(t testing.TB, env Env) *Run { return HandoffPartition(t, env, c) }})
	}
	return out
}
