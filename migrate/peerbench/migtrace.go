package peerbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// MigtraceConfig describes one migtrace migration between two `migtrace
// serve` processes on loopback.
type MigtraceConfig struct {
	// Binary is the migtrace executable (built from ./cmd/migtrace).
	Binary string
	// Backend is "sim" or "kvm".
	Backend     string
	MemoryBytes uint64
	// DirtyRate is the guest's dirtying rate in bytes per second.
	DirtyRate uint64
	// MaxBandwidth caps migration traffic in bytes per second; 0 = none.
	MaxBandwidth       uint64
	DowntimeTarget     time.Duration
	SkipMemoryChecksum bool
	// VerifyMemory is --verify-memory; "" leaves migtrace's default.
	VerifyMemory string
	// Warmup is how long the booted guest runs before the migration.
	Warmup time.Duration
	// Dir receives the trace files; Name tells this run's files apart.
	Dir, Name string
}

// MigtraceResult is one migtrace migration as both servers report it.
type MigtraceResult struct {
	Source, Destination *model.Side
	// TraceDowntime and TraceBlackout are what `migtrace report summary`
	// reads from the two trace files; they must equal the API's figures.
	TraceDowntime, TraceBlackout time.Duration
}

// RunMigtrace starts a source server that boots the VM and a destination
// server, lets the guest run for Warmup, migrates it with `migtrace
// migrate`, reads both sides' records from GET /v1/instance, stops the
// servers and checks the records against their trace files.
func RunMigtrace(ctx context.Context, cfg MigtraceConfig) (MigtraceResult, error) {
	var r MigtraceResult
	srcTrace := filepath.Join(cfg.Dir, cfg.Name+"-src.jsonl")
	dstTrace := filepath.Join(cfg.Dir, cfg.Name+"-dst.jsonl")
	src, err := startServe(ctx, cfg, "source", true, srcTrace)
	if err != nil {
		return r, err
	}
	defer src.stop()
	dst, err := startServe(ctx, cfg, "destination", false, dstTrace)
	if err != nil {
		return r, err
	}
	defer dst.stop()
	if err := sleepCtx(ctx, cfg.Warmup); err != nil {
		return r, err
	}

	cmd := exec.CommandContext(ctx, cfg.Binary, "migrate", "--from", src.addr, "--to", dst.addr, "-o", "json")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return r, fmt.Errorf("migtrace migrate: %w: %s", err, lastLines(out.String(), 5))
	}
	srcSt, err := src.status(ctx)
	if err != nil {
		return r, err
	}
	dstSt, err := dst.status(ctx)
	if err != nil {
		return r, err
	}
	if dstSt.State != server.StateRunning || dstSt.Migration == nil || dstSt.Migration.Result != schema.ResultSuccess || dstSt.Migration.Detail == nil {
		return r, fmt.Errorf("migtrace destination after the migration: state %s, migration %+v", dstSt.State, dstSt.Migration)
	}
	if srcSt.Migration == nil || srcSt.Migration.ID != dstSt.Migration.ID || srcSt.Migration.Detail == nil {
		return r, fmt.Errorf("migtrace source has no record of migration %s", dstSt.Migration.ID)
	}
	r.Source, r.Destination = srcSt.Migration.Detail, dstSt.Migration.Detail

	// The servers flush their traces as they exit.
	if err := src.stop(); err != nil {
		return r, err
	}
	if err := dst.stop(); err != nil {
		return r, err
	}
	if r.TraceDowntime, r.TraceBlackout, err = traceSummary(ctx, cfg.Binary, srcTrace, dstTrace); err != nil {
		return r, err
	}
	if r.Destination.Blackout == nil {
		return r, errors.New("migtrace's destination recorded no blackout")
	}
	// A migration that moved the guest but not intact is no result: its
	// memory, device state or TSC ring failed a check, before or after
	// the handoff.
	if !r.Destination.Verified() {
		return r, fmt.Errorf("migtrace's destination did not verify the guest: continuity %+v, after the handoff %+v",
			r.Destination.Continuity, r.Destination.MemoryLate)
	}
	apiDowntime, apiBlackout := time.Duration(r.Source.DowntimeNs), time.Duration(r.Destination.Blackout.Ns)
	if r.TraceDowntime != apiDowntime || r.TraceBlackout != apiBlackout {
		return r, fmt.Errorf("migtrace's trace and API disagree: downtime %v vs %v, blackout %v vs %v",
			r.TraceDowntime, apiDowntime, r.TraceBlackout, apiBlackout)
	}
	return r, nil
}

// serveProc is one `migtrace serve`.
type serveProc struct {
	role   string
	addr   string
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{}
	err    error
	hc     *http.Client
}

func startServe(ctx context.Context, cfg MigtraceConfig, role string, boot bool, trace string) (*serveProc, error) {
	// A port taken between the probe and serve's own listen makes serve
	// exit at once; try a few.
	var lastErr error
	for range 3 {
		p, err := tryServe(ctx, cfg, role, boot, trace)
		if err == nil {
			return p, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func tryServe(ctx context.Context, cfg MigtraceConfig, role string, boot bool, trace string) (*serveProc, error) {
	addr, err := freeLoopbackPort()
	if err != nil {
		return nil, fmt.Errorf("starting the migtrace %s: %w", role, err)
	}
	args := []string{"serve", "--listen", addr, "--backend", cfg.Backend,
		"--memory", strconv.FormatUint(cfg.MemoryBytes, 10),
		"--dirty-rate", strconv.FormatUint(cfg.DirtyRate, 10),
		"--max-bandwidth", strconv.FormatUint(cfg.MaxBandwidth, 10),
		"--downtime-target", cfg.DowntimeTarget.String(),
		"--trace-file", trace, "--log-level", "warn"}
	if boot {
		args = append(args, "--boot")
	}
	if cfg.SkipMemoryChecksum {
		args = append(args, "--skip-memory-checksum")
	}
	if cfg.VerifyMemory != "" {
		args = append(args, "--verify-memory", cfg.VerifyMemory)
	}
	p := &serveProc{role: role, addr: addr, out: &tailBuffer{max: 8 << 10}, exited: make(chan struct{}),
		hc: &http.Client{Timeout: 10 * time.Second}}
	p.cmd = exec.Command(cfg.Binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the migtrace %s: %w", role, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	// Ready once the API answers, and, with --boot, the VM runs.
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := p.status(ctx)
		if err == nil && (!boot || st.State == server.StateRunning) {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("starting the migtrace %s: it exited (%v): %s", role, p.err, lastLines(p.out.String(), 5))
		case <-ctx.Done():
			p.stop()
			return nil, fmt.Errorf("starting the migtrace %s: %w", role, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("starting the migtrace %s: not ready after 60 s (last: %v)", role, err)
		}
	}
}

func (p *serveProc) status(ctx context.Context) (server.InstanceStatus, error) {
	var st server.InstanceStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/v1/instance", nil)
	if err != nil {
		return st, err
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return st, fmt.Errorf("migtrace %s: GET /v1/instance: %w", p.role, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return st, fmt.Errorf("migtrace %s: GET /v1/instance: %w", p.role, err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("migtrace %s: GET /v1/instance: %s", p.role, resp.Status)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("migtrace %s: decoding /v1/instance: %w", p.role, err)
	}
	return st, nil
}

// stop ends the server with SIGTERM, which flushes its trace, and kills
// it if it takes longer than 15 s. It is safe to call more than once.
func (p *serveProc) stop() error {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			return fmt.Errorf("stopping the migtrace %s: killed after 15 s", p.role)
		}
	}
	if p.err != nil {
		return fmt.Errorf("migtrace %s exited: %w: %s", p.role, p.err, lastLines(p.out.String(), 5))
	}
	return nil
}

// traceSummary runs `migtrace report summary -o json` over both traces and
// returns the one migration's downtime and blackout.
func traceSummary(ctx context.Context, bin, srcTrace, dstTrace string) (downtime, blackout time.Duration, err error) {
	out, err := exec.CommandContext(ctx, bin, "report", "summary", "-o", "json", srcTrace, dstTrace).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, lastLines(string(ee.Stderr), 5))
		}
		return 0, 0, fmt.Errorf("migtrace report summary: %w", err)
	}
	var sum struct {
		Migrations int `json:"migrations"`
		Downtime   struct {
			Count int   `json:"count"`
			P50   int64 `json:"p50_ns"`
		} `json:"downtime"`
		Blackout struct {
			Count int   `json:"count"`
			P50   int64 `json:"p50_ns"`
		} `json:"blackout"`
	}
	if err := json.Unmarshal(out, &sum); err != nil {
		return 0, 0, fmt.Errorf("migtrace report summary: decoding: %w", err)
	}
	if sum.Migrations != 1 || sum.Downtime.Count != 1 || sum.Blackout.Count != 1 {
		return 0, 0, fmt.Errorf("migtrace report summary: %d migrations, %d downtimes, %d blackouts in the traces, want 1 each",
			sum.Migrations, sum.Downtime.Count, sum.Blackout.Count)
	}
	return time.Duration(sum.Downtime.P50), time.Duration(sum.Blackout.P50), nil
}

func freeLoopbackPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
