package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/migtrace/migtrace/migrate/server"
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
	name, addr, trace string
	cmd               *exec.Cmd
	logs              bytes.Buffer
	exited            chan error
}

func startLoadServer(bin, dir, name, addr string, args ...string) (*loadServer, error) {
	s := &loadServer{name: name, addr: addr, trace: filepath.Join(dir, name+".jsonl"), exited: make(chan error, 1)}
	args = append([]string{"serve", "--listen", addr, "--name", name, "--memory", strconv.Itoa(loadGuestMiB) + "MiB",
		"--trace-file", s.trace, "--log-level", "warn"}, args...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stderr = &s.logs
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.exited <- s.cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// The name proves it is this server answering, not another one
		// that took the port first.
		if st, err := instanceStatus(addr); err == nil && st.Name == name {
			return s, nil
		}
		select {
		case err := <-s.exited:
			return nil, fmt.Errorf("%s exited before answering: %v\n%s", name, err, s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s on %s never answered", name, addr)
		}
	}
}

// stop interrupts the server and waits for it to flush and exit.
func (s *loadServer) stop() error {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-s.exited:
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", s.name, err, s.logs.String())
		}
		return nil
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		return fmt.Errorf("%s did not exit within 20s of SIGINT", s.name)
	}
}

// memoryKiB reads the process's resident set now and at its peak.
func (s *loadServer) memoryKiB() (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
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
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", s.cmd.Process.Pid)
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

// pickAddrs returns n distinct free loopback addresses: every port stays
// open until all are picked, so no two servers are given the same one.
func pickAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs
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
			out[i], errs[i] = startLoadServer(bin, dir, fmt.Sprintf("%s%02d", prefix, i), addrs[i], args...)
		})
	}
	wg.Wait()
	for i, s := range out {
		if s != nil {
			t.Cleanup(func() {
				if s.cmd.ProcessState == nil {
					_ = s.cmd.Process.Kill()
				}
			})
		}
		if errs[i] != nil {
			t.Fatal(errs[i])
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
	bin := migtraceBinary(t)
	dir := t.TempDir()
	addrs := pickAddrs(t, 2*loadMigrations)
	sources := startAll(t, bin, dir, "src", addrs[:loadMigrations], "--boot", "--dirty-rate", "1MiB")
	dests := startAll(t, bin, dir, "dst", addrs[loadMigrations:])

	began := time.Now()
	var wg sync.WaitGroup
	results := make([]error, loadMigrations)
	for i := range loadMigrations {
		wg.Go(func() { results[i] = migrateAndWait(sources[i].addr, dests[i].addr, 60*time.Second) })
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
func migrateAndWait(source, dest string, within time.Duration) error {
	body, _ := json.Marshal(server.MigrateRequest{Source: source})
	resp, err := http.Post("http://"+dest+"/v1/migrate", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	var started server.MigrateResponse
	err = json.NewDecoder(resp.Body).Decode(&started)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || err != nil {
		return fmt.Errorf("POST /v1/migrate: %s, %v", resp.Status, err)
	}
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		st, err := instanceStatus(dest)
		if err != nil {
			return err
		}
		m := st.Migration
		if m == nil || m.ID != started.ID || m.Result == "running" {
			continue
		}
		if m.Result != schema.ResultSuccess {
			return fmt.Errorf("failed in %s: %s", m.ErrorPhase, m.Error)
		}
		if st.State != server.StateRunning {
			return fmt.Errorf("succeeded but the destination is %s", st.State)
		}
		return nil
	}
	return fmt.Errorf("not done within %v", within)
}
