package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/report/otlpread"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// steerPair starts a source booting a guest of memory that dirties it at
// dirty, and an empty destination, both writing trace files, and lets the
// guest dirty its memory for a while, so that pages cost wire time.
type steerPair struct {
	bin                string
	src, dst           *servertest.Proc
	srcTrace, dstTrace string
}

func newSteerPair(t *testing.T, memory, dirty string) *steerPair {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	p := &steerPair{bin: servertest.Binary(t), srcTrace: filepath.Join(dir, "src.jsonl"), dstTrace: filepath.Join(dir, "dst.jsonl")}
	p.src = servertest.Start(t, p.bin, servertest.Options{Name: "src", Args: []string{"--boot", "--memory", memory,
		"--dirty-rate", dirty, "--io-timeout", "10s", "--trace-file", p.srcTrace}})
	p.dst = servertest.Start(t, p.bin, servertest.Options{Name: "dst", Args: []string{"--memory", memory, "--trace-file", p.dstTrace}})
	time.Sleep(time.Second)
	return p
}

// start runs migrate --detach with args and returns the migration id.
func (p *steerPair) start(t *testing.T, from string, args ...string) string {
	t.Helper()
	r := servertest.Migrate(t, p.bin, from, p.dst.Addr(), append([]string{"--detach"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("migrate --detach: %s", r)
	}
	id := strings.TrimSpace(r.Stdout)
	if _, err := migrate.ParseID(id); err != nil {
		t.Fatalf("migrate --detach printed %q, not an id: %v", r.Stdout, err)
	}
	return id
}

// inPhase waits until p reports migration id in phase (some way into it,
// for a RAM phase) and returns that status.
func inPhase(t *testing.T, p *servertest.Proc, id string, phase schema.Phase) server.InstanceStatus {
	t.Helper()
	return p.Await(t, 30*time.Second, func(st server.InstanceStatus) bool {
		m := st.Migration
		if m == nil || m.ID != id || m.Result != server.ResultRunning || m.Progress == nil || m.Progress.Phase != phase.String() {
			return false
		}
		return !model.IsRAM(phase) || m.Progress.RoundDone > 0
	})
}

// ended waits until p reports migration id ended.
func ended(t *testing.T, p *servertest.Proc, id string) *server.MigrationStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := servertest.WaitMigration(ctx, p.Client(), id)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return st.Migration
}

// guestRuns checks that p runs the guest: running, and its TSC advancing.
func guestRuns(t *testing.T, p *servertest.Proc) {
	t.Helper()
	a := p.Status(t)
	time.Sleep(50 * time.Millisecond)
	b := p.Status(t)
	if a.State != server.StateRunning || b.State != server.StateRunning || b.GuestTSC <= a.GuestTSC {
		t.Errorf("%s: state %s then %s, guest TSC %d then %d; want running, advancing", p, a.State, b.State, a.GuestTSC, b.GuestTSC)
	}
}

// decodeTrace reads one server's trace file back as report does.
func decodeTrace(t *testing.T, path, id string, role schema.Role) model.Side {
	t.Helper()
	r := otlpread.New()
	if err := r.ReadFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	ms, err := r.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == id && m.Role == role && !m.ReportedByPeer {
			return m
		}
	}
	t.Fatalf("%s holds no %s side of migration %s", path, role, id)
	return model.Side{}
}

// A cancel before the handoff, from either server's API or from
// migtrace cancel, in the pre-copy or with the guest paused, ends the
// migration on both sides as a cancellation in that phase, recorded the
// same on both, in the API and in the traces; the source's guest runs
// on, and a migration after it succeeds with memory verified.
func TestCancelBeforeTheHandoff(t *testing.T) {
	for _, tc := range []struct {
		name  string
		phase schema.Phase
		via   string // "source", "destination": the API; "cli-source", "cli-destination": migtrace cancel
		args  []string
	}{
		{"source API in the pre-copy", schema.PhaseRamPushPrePause, "source", []string{"--max-bandwidth", "4MiB"}},
		{"destination API in the pre-copy", schema.PhaseRamPushPrePause, "destination", []string{"--max-bandwidth", "4MiB"}},
		// One pre-copy round over a link the dirtying guest outruns leaves
		// a long paused round. The link is slow, not capped: the source
		// lifts its own cap at the pause.
		{"migtrace cancel at the destination with the guest paused", schema.PhaseRamPushPostPause, "cli-destination",
			[]string{"--max-rounds", "1"}},
		{"migtrace cancel at the source with the guest paused", schema.PhaseRamPushPostPause, "cli-source",
			[]string{"--max-rounds", "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newSteerPair(t, "24MiB", "24MiB")
			from := p.src.Addr()
			if tc.phase == schema.PhaseRamPushPostPause {
				link := servertest.NewFrameProxy(t, from)
				link.SetRate(8 << 20)
				from = link.Addr()
			}
			id := p.start(t, from, tc.args...)
			at := p.dst
			if strings.HasSuffix(tc.via, "source") {
				at = p.src
			}
			inPhase(t, p.dst, id, tc.phase)
			if strings.HasPrefix(tc.via, "cli-") {
				r := servertest.Run(t, p.bin, "cancel", "--server", at.Addr())
				if r.Code != 0 || !strings.Contains(r.Stdout, "cancelled in phase "+tc.phase.String()) {
					t.Fatalf("migtrace cancel: %s", r)
				}
			} else if _, err := at.Client().Cancel(context.Background(), id, server.CancelRequest{By: "steer test"}); err != nil {
				t.Fatal(err)
			}
			var by string
			for _, side := range []struct {
				p     *servertest.Proc
				role  schema.Role
				trace string
			}{{p.src, schema.RoleSource, p.srcTrace}, {p.dst, schema.RoleDestination, p.dstTrace}} {
				m := ended(t, side.p, id)
				if m.Result != schema.ResultCancelled || m.ErrorPhase != tc.phase.String() || m.Detail == nil ||
					m.Detail.Result != schema.ResultCancelled || m.Detail.CancelledBy != m.CancelledBy {
					t.Fatalf("%s: result %q in %q (%s), by %q; want cancelled in %s", side.role, m.Result, m.ErrorPhase, m.Error, m.CancelledBy, tc.phase)
				}
				if by == "" {
					by = m.CancelledBy
				} else if m.CancelledBy != by {
					t.Errorf("the sides disagree on who cancelled: %q and %q", by, m.CancelledBy)
				}
				// The trace says the same as the API.
				d := decodeTrace(t, side.trace, id, side.role)
				if d.Result != schema.ResultCancelled || d.CancelledBy != by || d.ErrorPhase != tc.phase.String() {
					t.Errorf("%s trace: result %q by %q in %q", side.role, d.Result, d.CancelledBy, d.ErrorPhase)
				}
			}
			wantBy := at.Status(t).Name + " (" + at.Addr() + ") for "
			if !strings.HasPrefix(by, wantBy) {
				t.Errorf("cancelled by %q, want the server asked, %q...", by, wantBy)
			}
			t.Logf("cancelled in %s by %s", tc.phase, by)
			guestRuns(t, p.src)
			if st := p.dst.Status(t); st.State != server.StateWaiting {
				t.Errorf("destination state %s after the cancel, want waiting", st.State)
			}
			// The guest is intact: it migrates, memory verified at the
			// handoff.
			r := servertest.Migrate(t, p.bin, p.src.Addr(), p.dst.Addr())
			if r.Code != 0 {
				t.Fatalf("migration after the cancel: %s", r)
			}
			if m := p.dst.Status(t).Migration; m.Detail == nil || !m.Detail.Verified() || !m.Detail.Continuity.MemoryChecksumOK {
				t.Errorf("migration after the cancel not verified: %+v", m)
			}
		})
	}
}

// Ctrl-C on migtrace migrate cancels the migration it follows, which it
// then reports cancelled, exiting 1; the guest runs on at the source.
func TestCtrlCOnMigrateCancels(t *testing.T) {
	t.Parallel()
	p := newSteerPair(t, "24MiB", "24MiB")
	cmd := exec.Command(p.bin, "migrate", "--from", p.src.Addr(), "--to", p.dst.Addr(), "--max-bandwidth", "4MiB")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	st := p.dst.Await(t, 30*time.Second, func(st server.InstanceStatus) bool {
		m := st.Migration
		return m != nil && m.Progress != nil && m.Progress.Phase == schema.PhaseRamPushPrePause.String() && m.Progress.RoundDone > 0
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	select {
	case err := <-done:
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("migrate after Ctrl-C: %v, want exit 1\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("migrate still running 30 s after Ctrl-C:\n%s", out.String())
	}
	for _, want := range []string{"cancelling in phase RamPushPrePause", "migration " + st.Migration.ID + ": cancelled",
		"the VM keeps running on " + p.src.Addr()} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("migrate's output lacks %q:\n%s", want, out.String())
		}
	}
	for _, s := range []*servertest.Proc{p.src, p.dst} {
		m := ended(t, s, st.Migration.ID)
		if m.Result != schema.ResultCancelled || !strings.Contains(m.CancelledBy, "cli (Ctrl-C on migrate)") {
			t.Errorf("%s: %s by %q, want cancelled by the CLI's Ctrl-C", s, m.Result, m.CancelledBy)
		}
	}
	guestRuns(t, p.src)
}

// delayProxy forwards TCP connections to target, holding back what the
// target sends for delay, so that the source's messages reach the
// destination late and the handoff's windows (the source undecided, the
// destination ready) last at least that long.
type delayProxy struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

func newDelayProxy(t *testing.T, target string, delay time.Duration) *delayProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &delayProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(u, c); _ = u.(*net.TCPConn).CloseWrite() }()
			go func() { defer p.wg.Done(); delayCopy(c, u, delay) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *delayProxy) Addr() string { return p.ln.Addr().String() }

// delayCopy copies src to dst, each chunk delay after it was read.
func delayCopy(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	ch := make(chan chunk, 1024)
	go func() {
		defer close(ch)
		for {
			b := make([]byte, 64<<10)
			n, err := src.Read(b)
			if n > 0 {
				ch <- chunk{b[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	for range ch { // let the reader finish
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// From its handoff on (the source undecided, the destination ready) a
// side refuses a cancel, saying why, and the migration completes: the
// guest runs on the destination only. Once the destination is ready the
// source is past its own point too, so both refuse.
func TestCancelRefusedAtTheHandoffServers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		side   schema.Role // whose handoff state the test waits for
		state  migrate.HandoffState
		refuse []schema.Role // the servers asked to cancel then
	}{
		{"source undecided", schema.RoleSource, migrate.HandoffUndecided, []schema.Role{schema.RoleSource}},
		{"destination ready", schema.RoleDestination, migrate.HandoffReady, []schema.Role{schema.RoleDestination, schema.RoleSource}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newSteerPair(t, "16MiB", "1MiB")
			// The destination reaches the source through a proxy that
			// delays the source's messages by 300 ms.
			proxy := newDelayProxy(t, p.src.Addr(), 300*time.Millisecond)
			id := p.start(t, proxy.Addr())
			at := p.src
			if tc.side == schema.RoleDestination {
				at = p.dst
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for {
				h, err := at.Client().Handoff(ctx, id)
				if err == nil && h.State == tc.state {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("%s never reached handoff state %q: %+v, %v", at, tc.state, h, err)
				}
				time.Sleep(2 * time.Millisecond)
			}
			for _, role := range tc.refuse {
				s := p.src
				if role == schema.RoleDestination {
					s = p.dst
				}
				_, err := s.Client().Cancel(ctx, id, server.CancelRequest{By: "late operator"})
				var apiErr *server.APIError
				if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusConflict ||
					!strings.Contains(apiErr.Reason, "too late to cancel") {
					t.Fatalf("cancel at %s in the handoff: %v; want 409 too late", s, err)
				}
				t.Logf("%s: %s", s, apiErr.Reason)
			}
			for _, s := range []*servertest.Proc{p.src, p.dst} {
				if m := ended(t, s, id); m.Result != schema.ResultSuccess || m.CancelledBy != "" {
					t.Errorf("%s: %s (cancelled by %q), want success", s, m.Result, m.CancelledBy)
				}
			}
			guestRuns(t, p.dst)
			if st := p.src.Status(t); st.State != server.StateMigrated {
				t.Errorf("source %s after the handoff, want migrated", st.State)
			}
		})
	}
}

// A bandwidth raised mid-migration, through the destination, shortens
// the rest of it: both traces record the change with the old and new
// rates, and the pre-copy takes far less than its bytes at the old rate.
// A change made at the source directly reaches the destination's trace
// too, in order.
func TestRaisedBandwidthShortensTheMigration(t *testing.T) {
	t.Parallel()
	p := newSteerPair(t, "32MiB", "32MiB")
	const slow = 2 << 20
	id := p.start(t, p.src.Addr(), "--max-bandwidth", "2MiB", "--max-rounds", "2")
	inPhase(t, p.dst, id, schema.PhaseRamPushPrePause)
	time.Sleep(500 * time.Millisecond) // some way in at the slow rate
	r := servertest.Run(t, p.bin, "migrate-set", "--server", p.src.Addr(), "--max-rounds", "3")
	if r.Code != 0 || !strings.Contains(r.Stdout, "max_rounds 2 -> 3 (in RamPushPrePause)") {
		t.Fatalf("migrate-set at the source: %s", r)
	}
	r = servertest.Run(t, p.bin, "migrate-set", "--server", p.dst.Addr(), "--max-bandwidth", "1GiB")
	if r.Code != 0 || !strings.Contains(r.Stdout, "max_bandwidth 2 MiB/s -> 1 GiB/s (in RamPushPrePause)") {
		t.Fatalf("migrate-set: %s", r)
	}
	for _, s := range []*servertest.Proc{p.src, p.dst} {
		if m := ended(t, s, id); m.Result != schema.ResultSuccess {
			t.Fatalf("%s: %s: %s", s, m.Result, m.Error)
		}
	}
	src := decodeTrace(t, p.srcTrace, id, schema.RoleSource)
	dst := decodeTrace(t, p.dstTrace, id, schema.RoleDestination)
	for _, d := range []model.Side{src, dst} {
		if d.Settings == nil || d.Settings.MaxBandwidth != slow || len(d.SettingsChanges) != 2 {
			t.Fatalf("%s trace: settings %+v, changes %+v; want a 2 MiB/s start and two changes", d.Role, d.Settings, d.SettingsChanges)
		}
		if c := d.SettingsChanges[0]; c.Setting != schema.SettingMaxRounds || c.Old != 2 || c.New != 3 ||
			!strings.HasPrefix(c.By, "src (") {
			t.Errorf("%s trace: first change %+v, want max_rounds 2 -> 3 at the source", d.Role, c)
		}
		if c := d.SettingsChanges[1]; c.Setting != schema.SettingMaxBandwidth || c.Old != slow || c.New != 1<<30 ||
			c.Phase != schema.PhaseRamPushPrePause || !strings.HasPrefix(c.By, "dst (") || !strings.Contains(c.By, "for cli at") {
			t.Errorf("%s trace: second change %+v, want max_bandwidth 2 MiB/s -> 1 GiB/s through the destination", d.Role, c)
		}
	}
	pre, _ := src.Phase(schema.PhaseRamPushPrePause)
	var wire int64
	for _, rd := range src.PrecopyRounds {
		wire += rd.WireBytes
	}
	atSlow := time.Duration(float64(wire) / slow * float64(time.Second))
	t.Logf("pre-copy moved %d bytes in %v; at 2 MiB/s throughout it would have taken %v", wire, pre.Duration(), atSlow)
	if pre.Duration() > atSlow/2 {
		t.Errorf("pre-copy took %v for %d bytes, more than half the %v the old rate needs", pre.Duration(), wire, atSlow)
	}
}

// Several clients cancelling and changing settings at once, at both
// servers, leave one outcome: the migration cancelled, once, by one of
// them, recorded alike on both sides; every request answered with a
// success or a refusal saying why; the guest running on the source.
func TestConcurrentCancelsAndChanges(t *testing.T) {
	t.Parallel()
	p := newSteerPair(t, "24MiB", "24MiB")
	id := p.start(t, p.src.Addr(), "--max-bandwidth", "4MiB")
	inPhase(t, p.dst, id, schema.PhaseRamPushPrePause)
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make(chan string, 32)
	start := make(chan struct{})
	for i := range 12 {
		at := []*servertest.Proc{p.src, p.dst}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			by := fmt.Sprintf("client %d", i)
			var err error
			if i%3 == 0 {
				_, err = at.Client().Cancel(ctx, id, server.CancelRequest{By: by})
			} else {
				rounds := int64(2 + i)
				_, err = at.Client().UpdateSettings(ctx, id, server.SettingsRequest{Settings: migrate.Settings{MaxRounds: &rounds}, By: by})
			}
			var apiErr *server.APIError
			switch {
			case err == nil:
				results <- "ok"
			case errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusConflict || apiErr.StatusCode == http.StatusBadGateway):
				results <- fmt.Sprintf("%d %s", apiErr.StatusCode, apiErr.Reason)
			default:
				results <- "unexpected: " + err.Error()
			}
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	answers := map[string]int{}
	for r := range results {
		if strings.HasPrefix(r, "unexpected") {
			t.Error(r)
		}
		answers[strings.SplitN(r, ":", 2)[0]]++
	}
	t.Logf("answers: %v", answers)
	var by string
	for _, s := range []*servertest.Proc{p.src, p.dst} {
		m := ended(t, s, id)
		if m.Result != schema.ResultCancelled || !strings.Contains(m.CancelledBy, "for client ") {
			t.Fatalf("%s: %s by %q", s, m.Result, m.CancelledBy)
		}
		if by != "" && m.CancelledBy != by {
			t.Errorf("the sides disagree on who cancelled: %q and %q", by, m.CancelledBy)
		}
		by = m.CancelledBy
	}
	// The destination's changes are the source's, in the source's order:
	// each one it forwarded, as the source made it.
	src, dst := p.src.Status(t).Migration.Detail, p.dst.Status(t).Migration.Detail
	j := 0
	for _, c := range dst.SettingsChanges {
		for j < len(src.SettingsChanges) && !src.SettingsChanges[j].Time.Equal(c.Time) {
			j++
		}
		if j == len(src.SettingsChanges) || src.SettingsChanges[j].New != c.New {
			t.Errorf("destination change %+v is not among the source's, in order: %+v", c, src.SettingsChanges)
		}
	}
	t.Logf("cancelled by %s; source recorded %d changes, destination %d", by, len(src.SettingsChanges), len(dst.SettingsChanges))
	guestRuns(t, p.src)
}

// Settings given to migrate reach the source, which runs with them and
// answers with them, so that both sides record the same; invalid ones
// are refused before anything starts, by the CLI, the destination's API
// and the source's stream endpoint, each naming the setting.
func TestMigrationSettingsReachBothSides(t *testing.T) {
	t.Parallel()
	p := newSteerPair(t, "16MiB", "1MiB")
	r := servertest.Migrate(t, p.bin, p.src.Addr(), p.dst.Addr(), "--max-bandwidth", "512MiB", "--downtime-target", "80ms",
		"--max-rounds", "3", "--auto-converge", "--clock-skew-correction", "--skip-memory-checksum")
	if r.Code != 0 {
		t.Fatalf("migrate: %s", r)
	}
	want := model.Settings{MaxBandwidth: 512 << 20, DowntimeTargetNs: int64(80 * time.Millisecond), MaxRounds: 3,
		AutoConverge: true, ClockSkewCorrection: true, SkipMemoryChecksum: true}
	id := p.dst.Status(t).Migration.ID
	for _, s := range []struct {
		p     *servertest.Proc
		role  schema.Role
		trace string
	}{{p.src, schema.RoleSource, p.srcTrace}, {p.dst, schema.RoleDestination, p.dstTrace}} {
		d := s.p.Status(t).Migration.Detail
		if d == nil || d.Settings == nil || *d.Settings != want {
			t.Errorf("%s recorded settings %+v, want %+v", s.role, d.Settings, want)
		}
		if tr := decodeTrace(t, s.trace, id, s.role); tr.Settings == nil || *tr.Settings != want {
			t.Errorf("%s trace settings %+v, want %+v", s.role, tr.Settings, want)
		}
	}
	// The source acted on them: it skipped the checksum, and the
	// destination applied the skew correction.
	if d := p.dst.Status(t).Migration.Detail; !d.Continuity.MemoryUnchecked || !d.ClockOffset.SkewCorrected {
		t.Errorf("settings not acted on: continuity %+v, clock %+v", d.Continuity, d.ClockOffset)
	}

	// Refused before anything starts. The VM is now on dst.
	if r := servertest.Migrate(t, p.bin, p.dst.Addr(), p.src.Addr(), "--max-rounds", "0"); r.Code != 2 || !strings.Contains(r.Stderr, "--max-rounds") {
		t.Errorf("migrate --max-rounds 0: %s", r)
	}
	zero := int64(0)
	_, err := p.src.Client().StartMigration(context.Background(), server.MigrateRequest{Source: p.dst.Addr(),
		Settings: &migrate.Settings{MaxRounds: &zero}})
	var apiErr *server.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(apiErr.Reason, "max_rounds 0") {
		t.Errorf("POST /v1/migrate with max_rounds 0: %v", err)
	}
	resp, err := http.Get("http://" + p.dst.Addr() + server.StreamPath + "?id=" + migrate.NewID().String() + "&max_rounds=0&downtime_target_ns=-1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "max_rounds 0") || !strings.Contains(string(body), "downtime_target_ns -1") {
		t.Errorf("stream with invalid settings: %s %s", resp.Status, body)
	}
	if st := p.dst.Status(t); st.State != server.StateRunning || st.Migration.ID != id {
		t.Errorf("after the refusals the source is %s with migration %s", st.State, st.Migration.ID)
	}
}

// Bad flags of the steering commands are usage errors naming the flag,
// before any server is asked.
func TestSteeringUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"cancel"}, "missing required flag --server"},
		{[]string{"cancel", "--server", "127.0.0.1"}, "--server"},
		{[]string{"cancel", "--server", "127.0.0.1:1", "--migration", "nope"}, "--migration"},
		{[]string{"migrate-set", "--server", "127.0.0.1:1"}, "nothing to change"},
		{[]string{"migrate-set", "--server", "127.0.0.1:1", "--max-rounds", "0"}, "--max-rounds"},
		{[]string{"migrate-set", "--server", "127.0.0.1:1", "--downtime-target", "-5ms"}, "--downtime-target"},
		{[]string{"migrate-set", "--server", "127.0.0.1:1", "--downtime-target", "2h"}, "downtime_target_ns"},
		{[]string{"migrate-set", "--server", "127.0.0.1:1", "--skip-memory-checksum"}, "unknown flag"},
		{[]string{"migrate", "--from", "127.0.0.1:1", "--to", "127.0.0.1:2", "--max-bandwidth", "fast"}, "--max-bandwidth"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, code := run(t, tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.says) {
				t.Errorf("exit %d, stderr %q; want %d saying %q", code, stderr, exitUsage, tc.says)
			}
		})
	}
}

// Behind a proxy that holds the source's messages back 200 ms, each side
// waits in every phase that waits for the other, long enough to be
// cancelled there from its API. One pair takes a cancel in each such
// phase in turn, on the source and on the destination: every migration
// ends cancelled on both sides in that phase, the guest running on at
// the source throughout, and a last migration succeeds, memory verified.
// (A source's Pause, RamPull and Finish, and a destination's
// RamPushPostPause and Finish, wait on nothing the proxy holds back and
// pass too quickly to catch from outside; TestCancelInEveryPhase in
// package migrate cancels them.)
func TestCancelInEachWaitingPhase(t *testing.T) {
	t.Parallel()
	p := newSteerPair(t, "16MiB", "2MiB")
	proxy := newDelayProxy(t, p.src.Addr(), 200*time.Millisecond)
	cases := []struct {
		side  schema.Role
		phase schema.Phase
	}{
		{schema.RoleSource, schema.PhaseSync}, {schema.RoleSource, schema.PhaseRamPushPrePause},
		{schema.RoleSource, schema.PhaseRamPushPostPause}, {schema.RoleSource, schema.PhaseTimeData},
		{schema.RoleSource, schema.PhaseDeviceState}, {schema.RoleSource, schema.PhaseServerState},
		{schema.RoleDestination, schema.PhaseSync}, {schema.RoleDestination, schema.PhaseRamPushPrePause},
		{schema.RoleDestination, schema.PhaseTimeData}, {schema.RoleDestination, schema.PhaseDeviceState},
		{schema.RoleDestination, schema.PhaseRamPull}, {schema.RoleDestination, schema.PhaseServerState},
	}
	for _, tc := range cases {
		at := p.src
		if tc.side == schema.RoleDestination {
			at = p.dst
		}
		id := p.start(t, proxy.Addr(), "--max-rounds", "2")
		// Both sides know of the migration first: a destination cancelled
		// before its source took the stream leaves the source nothing to
		// record.
		p.src.Await(t, 60*time.Second, func(st server.InstanceStatus) bool {
			return st.Migration != nil && st.Migration.ID == id
		})
		at.Await(t, 60*time.Second, func(st server.InstanceStatus) bool {
			m := st.Migration
			return m != nil && m.ID == id && m.Result == server.ResultRunning && m.Phase == tc.phase.String()
		})
		if _, err := at.Client().Cancel(context.Background(), id, server.CancelRequest{By: "phase test"}); err != nil {
			t.Fatalf("cancel at the %s in %s: %v", tc.side, tc.phase, err)
		}
		for _, s := range []*servertest.Proc{p.src, p.dst} {
			m := ended(t, s, id)
			if m.Result != schema.ResultCancelled || !strings.Contains(m.CancelledBy, "for phase test") {
				t.Fatalf("cancel at the %s in %s: %s ended %s (%s) by %q", tc.side, tc.phase, s, m.Result, m.Error, m.CancelledBy)
			}
			if s == at && m.ErrorPhase != tc.phase.String() {
				t.Errorf("cancel at the %s in %s: recorded in %s", tc.side, tc.phase, m.ErrorPhase)
			}
		}
		guestRuns(t, p.src)
		t.Logf("cancelled at the %s in %s", tc.side, tc.phase)
	}
	if r := servertest.Migrate(t, p.bin, p.src.Addr(), p.dst.Addr()); r.Code != 0 {
		t.Fatalf("migration after %d cancels: %s", len(cases), r)
	}
	if m := p.dst.Status(t).Migration; m.Detail == nil || !m.Detail.Verified() || !m.Detail.Continuity.MemoryChecksumOK {
		t.Errorf("migration after the cancels not verified: %+v", m)
	}
}
