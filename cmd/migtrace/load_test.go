package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/server/servertest"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Load: how many migrations run at once, and each guest's memory.
const (
	loadMigrations  = 32
	loadGuestMiB    = 16
	loadSourceSpans = 1 + 9 // the migration span and one per phase the source runs
	loadDestSpans   = 1 + 8
)

// loadServer is one `migtrace serve` process of the load test.
type loadServer struct {
	*servertest.Proc
	name, trace string
}

func startLoadServer(ctx context.Context, t *testing.T, bin, dir, name, addr string, args ...string) (*loadServer, error) {
	s := &loadServer{name: name, trace: filepath.Join(dir, name+".jsonl")}
	args = append([]string{"--listen", addr, "--memory", strconv.Itoa(loadGuestMiB) + "MiB",
		"--trace-file", s.trace, "--log-level", "warn"}, args...)
	// The name proves it is this server answering, not another one that
	// took the port first.
	p, err := servertest.Launch(ctx, t, bin, servertest.Options{Name: name, Args: args})
	s.Proc = p
	return s, err
}

// stop interrupts the server and waits for it to flush and exit.
func (s *loadServer) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.Stop(ctx)
}

// memoryKiB reads the process's resident set now and at its peak.
func (s *loadServer) memoryKiB() (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.PID()))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %q: %w", k, v, err)
		}
		if k == "VmRSS" {
			rss = n
		} else {
			hwm = n
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", s.PID())
	}
	return rss, hwm, nil
}

// countSpans counts the spans in an OTLP JSON Lines trace file.
func countSpans(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	spans := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(sc.Bytes())
		if err != nil {
			return spans, fmt.Errorf("%s: a line is not OTLP JSON: %w", path, err)
		}
		spans += td.SpanCount()
	}
	return spans, sc.Err()
}

// startAll starts one server per address at once.
func startAll(t *testing.T, bin, dir, prefix string, addrs []string, args ...string) []*loadServer {
	t.Helper()
	n := len(addrs)
	out := make([]*loadServer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out[i], errs[i] = startLoadServer(context.Background(), t, bin, dir, fmt.Sprintf("%s%02d", prefix, i), addrs[i], args...)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// 32 migrations at once among 64 serve processes on loopback: every one
// succeeds, every span reaches its trace file by the time the servers
// have shut down, and no server's memory grows past a bound.
func TestConcurrentMigrationsLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 64 processes")
	}
	bin := servertest.Binary(t)
	dir := t.TempDir()
	// Picked all at once, so no two servers are given the same port.
	addrs := servertest.FreeAddrs(t, 2*loadMigrations)
	sources := startAll(t, bin, dir, "src", addrs[:loadMigrations], "--boot", "--dirty-rate", "1MiB")
	dests := startAll(t, bin, dir, "dst", addrs[loadMigrations:])

	began := time.Now()
	var wg sync.WaitGroup
	results := make([]error, loadMigrations)
	for i := range loadMigrations {
		wg.Go(func() { results[i] = migrateAndWait(sources[i].Addr(), dests[i], 60*time.Second) })
	}
	wg.Wait()
	wall := time.Since(began)
	failed := 0
	for i, err := range results {
		if err != nil {
			failed++
			t.Errorf("migration %d (%s → %s): %v", i, sources[i].name, dests[i].name, err)
		}
	}
	t.Logf("%d concurrent migrations of %d MiB guests: %d failed, wall time %v",
		loadMigrations, loadGuestMiB, failed, wall.Round(time.Millisecond))

	// A server holds at most one guest at a time, plus the frames in
	// flight and the Go runtime: bound its peak at three guests' worth
	// plus 64 MiB.
	const boundKiB = (3*loadGuestMiB + 64) << 10
	all := append(append([]*loadServer{}, sources...), dests...)
	var peakSrc, peakDst, maxRSS int64
	for _, s := range all {
		rss, hwm, err := s.memoryKiB()
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
			continue
		}
		if hwm > boundKiB {
			t.Errorf("%s: peak RSS %d KiB over the %d KiB bound", s.name, hwm, boundKiB)
		}
		maxRSS = max(maxRSS, rss)
		if strings.HasPrefix(s.name, "src") {
			peakSrc = max(peakSrc, hwm)
		} else {
			peakDst = max(peakDst, hwm)
		}
	}
	t.Logf("memory: peak RSS (VmHWM) %d KiB on a source, %d KiB on a destination, largest RSS at the end %d KiB (bound %d KiB)",
		peakSrc, peakDst, maxRSS, boundKiB)

	// Graceful shutdown flushes every span; then count them all.
	errs := make([]error, len(all))
	for i, s := range all {
		wg.Go(func() { errs[i] = s.stop() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	exported := 0
	for _, s := range all {
		n, err := countSpans(s.trace)
		if err != nil {
			t.Errorf("%s: %v", s.name, err)
		}
		want := loadDestSpans
		if strings.HasPrefix(s.name, "src") {
			want = loadSourceSpans
		}
		if n != want {
			t.Errorf("%s exported %d spans, want %d", s.name, n, want)
		}
		exported += n
	}
	expected := loadMigrations * (loadSourceSpans + loadDestSpans)
	t.Logf("spans: %d expected, %d exported", expected, exported)
	if exported != expected {
		t.Errorf("%d spans exported, want %d: %d lost", exported, expected, expected-exported)
	}
}

// migrateAndWait asks the destination to pull from the source, as
// `migtrace migrate` does, and waits for the outcome.
func migrateAndWait(source string, dest *loadServer, within time.Duration) error {
	body, _ := json.Marshal(server.MigrateRequest{Source: source})
	resp, err := http.Post("http://"+dest.Addr()+server.MigratePath, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	var started server.MigrateResponse
	err = json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || err != nil {
		return fmt.Errorf("POST /v1/migrate: %s, %v", resp.Status, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	st, err := servertest.WaitMigration(ctx, dest.Client(), started.ID)
	if err != nil {
		return err
	}
	if m := st.Migration; m.Result != schema.ResultSuccess {
		return fmt.Errorf("failed in %s: %s", m.ErrorPhase, m.Error)
	}
	if st.State != server.StateRunning {
		return fmt.Errorf("succeeded but the destination is %s", st.State)
	}
	return nil
}
