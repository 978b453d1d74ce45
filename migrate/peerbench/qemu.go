package peerbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/migtrace/migtrace/migrate/peerbench/guest"
)

// DefaultQEMU is the QEMU binary Debian's qemu-system-x86 installs.
const DefaultQEMU = "qemu-system-x86_64"

// QEMUConfig describes one QEMU process running the peerbench guest.
type QEMUConfig struct {
	// Binary is the QEMU executable; DefaultQEMU if empty.
	Binary string
	// Kernel is the guest binary's path (guest.WriteFile).
	Kernel    string
	MemoryMiB uint32
	Params    guest.Params
	// Incoming, if set, starts a migration destination listening there
	// ("tcp:127.0.0.1:0" picks a free port; see IncomingAddress).
	Incoming string
	// Dir holds the QMP socket; Name tells this process's files apart.
	Dir, Name string
}

// QEMU is a running QEMU process.
type QEMU struct {
	Name   string
	QMP    *Client
	Serial *Serial

	cmd    *exec.Cmd
	stderr *tailBuffer
	exited chan struct{}
	err    error // Wait's result, once exited is closed
}

// StartQEMU starts QEMU under KVM with the guest and connects to its QMP
// socket. It does not wait for the guest to boot (see Serial.WaitFor).
func StartQEMU(ctx context.Context, cfg QEMUConfig) (*QEMU, error) {
	if cfg.Binary == "" {
		cfg.Binary = DefaultQEMU
	}
	if err := cfg.Params.Validate(cfg.MemoryMiB); err != nil {
		return nil, fmt.Errorf("starting qemu %s: guest parameters: %w", cfg.Name, err)
	}
	sock := filepath.Join(cfg.Dir, cfg.Name+".qmp")
	_ = os.Remove(sock)
	args := []string{
		"-name", "peerbench-" + cfg.Name,
		"-machine", "pc,accel=kvm",
		"-cpu", "host",
		"-smp", "1",
		"-m", strconv.FormatUint(uint64(cfg.MemoryMiB), 10) + "M",
		"-nodefaults", "-no-user-config", "-nographic",
		"-serial", "stdio",
		"-qmp", "unix:" + sock + ",server=on,wait=off",
		"-kernel", cfg.Kernel,
		"-append", cfg.Params.Cmdline(),
	}
	if cfg.Incoming != "" {
		args = append(args, "-incoming", cfg.Incoming)
	}
	// Not CommandContext: Stop ends the process, and a cancelled ctx must
	// not kill it before Stop has asked it to quit.
	cmd := exec.Command(cfg.Binary, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("starting qemu %s: %w", cfg.Name, err)
	}
	q := &QEMU{Name: cfg.Name, cmd: cmd, stderr: &tailBuffer{max: 8 << 10}, exited: make(chan struct{})}
	cmd.Stderr = q.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting qemu %s: %w", cfg.Name, err)
	}
	q.Serial = newSerial(stdout, q.exited, q.stderrTail)
	go func() {
		q.Serial.wg.Wait() // stdout fully read before Wait closes it
		q.err = cmd.Wait()
		close(q.exited)
	}()
	qmp, err := q.dialQMP(ctx, sock)
	if err != nil {
		q.kill()
		return nil, fmt.Errorf("starting qemu %s: %w", cfg.Name, err)
	}
	q.QMP = qmp
	return q, nil
}

// dialQMP connects once QEMU has created its socket.
func (q *QEMU) dialQMP(ctx context.Context, sock string) (*Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		c, err := Dial(ctx, "unix", sock)
		if err == nil {
			return c, nil
		}
		select {
		case <-q.exited:
			return nil, fmt.Errorf("qemu exited (%v): %s", q.err, q.stderrTail())
		case <-ctx.Done():
			return nil, fmt.Errorf("connecting to QMP: %w (last: %v)", ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (q *QEMU) stderrTail() string {
	s := strings.TrimSpace(q.stderr.String())
	if s == "" {
		return "no output on stderr"
	}
	return s
}

// IncomingAddress returns the host:port a destination listens on.
func (q *QEMU) IncomingAddress(ctx context.Context) (string, error) {
	var info struct {
		SocketAddress []struct {
			Type string `json:"type"`
			Host string `json:"host"`
			Port string `json:"port"`
		} `json:"socket-address"`
	}
	if err := q.QMP.Execute(ctx, "query-migrate", nil, &info); err != nil {
		return "", fmt.Errorf("qemu %s: incoming address: %w", q.Name, err)
	}
	for _, a := range info.SocketAddress {
		if a.Type == "inet" && a.Port != "" && a.Port != "0" {
			return a.Host + ":" + a.Port, nil
		}
	}
	return "", fmt.Errorf("qemu %s: query-migrate names no listening inet address", q.Name)
}

// Stop asks QEMU to quit and kills it if it has not within a few seconds.
func (q *QEMU) Stop(ctx context.Context) error {
	if q.QMP != nil {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		// The reply may not come: QEMU can close the socket first.
		_ = q.QMP.Execute(qctx, "quit", nil, nil)
		cancel()
	}
	select {
	case <-q.exited:
	case <-time.After(5 * time.Second):
		q.kill()
	}
	if q.QMP != nil {
		_ = q.QMP.Close()
	}
	var ee *exec.ExitError
	if q.err != nil && !errors.As(q.err, &ee) {
		return fmt.Errorf("stopping qemu %s: %w", q.Name, q.err)
	}
	return nil
}

func (q *QEMU) kill() {
	_ = q.cmd.Process.Signal(syscall.SIGKILL)
	<-q.exited
}

// Serial follows the guest's serial output.
type Serial struct {
	mu      sync.Mutex
	lines   []guest.Line
	raw     []string
	changed chan struct{}
	err     error // set once the output ended or held a bad guest line
	wg      sync.WaitGroup
	exited  <-chan struct{}
	stderr  func() string
}

func newSerial(r io.Reader, exited <-chan struct{}, stderr func() string) *Serial {
	s := &Serial{changed: make(chan struct{}), exited: exited, stderr: stderr}
	s.wg.Add(1)
	go s.read(r)
	return s
}

func (s *Serial) read(r io.Reader) {
	defer s.wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	var err error
	for sc.Scan() {
		text := sc.Text()
		var l guest.Line
		l, err = guest.ParseLine(text)
		if err == nil && l.Kind == guest.LineError {
			err = fmt.Errorf("the guest failed: %s", l.Message)
		}
		s.mu.Lock()
		s.raw = append(s.raw, text)
		if l.Kind != guest.LineOther {
			s.lines = append(s.lines, l)
		}
		s.err = err
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	if err == nil {
		err = sc.Err()
	}
	if err == nil {
		err = errors.New("the serial output ended")
	}
	s.err = err
	close(s.changed)
	s.mu.Unlock()
	// Keep draining so QEMU never blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r)
}

// WaitFor returns the first guest line for which match is true, waiting
// for it if needed.
func (s *Serial) WaitFor(ctx context.Context, match func(guest.Line) bool) (guest.Line, error) {
	seen := 0
	for {
		s.mu.Lock()
		for ; seen < len(s.lines); seen++ {
			if match(s.lines[seen]) {
				l := s.lines[seen]
				s.mu.Unlock()
				return l, nil
			}
		}
		changed, err := s.changed, s.err
		s.mu.Unlock()
		if err != nil {
			select {
			case <-s.exited:
				return guest.Line{}, fmt.Errorf("%w; qemu: %s", err, s.stderr())
			case <-time.After(time.Second):
				return guest.Line{}, err
			}
		}
		select {
		case <-ctx.Done():
			return guest.Line{}, fmt.Errorf("waiting for the guest: %w", ctx.Err())
		case <-changed:
		}
	}
}

// LastHeartbeat returns the latest heartbeat seen, if any.
func (s *Serial) LastHeartbeat() (guest.Line, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.lines) - 1; i >= 0; i-- {
		if s.lines[i].Kind == guest.LineHeartbeat {
			return s.lines[i], true
		}
	}
	return guest.Line{}, false
}

// Raw returns every serial line so far, firmware output included.
func (s *Serial) Raw() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.raw...)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// QEMUStats is what query-migrate reports about a finished migration.
type QEMUStats struct {
	Status    string `json:"status"`
	TotalTime int64  `json:"total-time"`
	Downtime  int64  `json:"downtime"`
	SetupTime int64  `json:"setup-time"`
	ErrorDesc string `json:"error-desc"`
	RAM       struct {
		Transferred    uint64  `json:"transferred"`
		Total          uint64  `json:"total"`
		Duplicate      uint64  `json:"duplicate"`
		Normal         uint64  `json:"normal"`
		NormalBytes    uint64  `json:"normal-bytes"`
		DirtySyncCount uint64  `json:"dirty-sync-count"`
		PageSize       uint64  `json:"page-size"`
		Mbps           float64 `json:"mbps"`
		DowntimeBytes  uint64  `json:"downtime-bytes"`
	} `json:"ram"`
}

// QEMUSettings are the migration parameters both systems get.
type QEMUSettings struct {
	// MaxBandwidth caps the migration in bytes per second (QMP
	// max-bandwidth); 0 lifts QEMU's default cap of 128 MiB/s.
	MaxBandwidth uint64
	// DowntimeLimit is QMP's downtime-limit, whole milliseconds.
	DowntimeLimit time.Duration
}

// noCapBandwidth stands for "no cap": QEMU's own maximum, 2^63-1 B/s
// would overflow its arithmetic, so use a rate no link here reaches.
const noCapBandwidth = 1 << 40

// QEMUResult is one QEMU migration's figures.
type QEMUResult struct {
	Stats QEMUStats
	// Stop is the source's STOP event, Resume the destination's RESUME.
	Stop, Resume time.Time
	// Passes counts the source's MIGRATION_PASS events.
	Passes int
	// Heartbeats are the guest's last heartbeat on the source and its
	// first after the migration on the destination.
	SourceHeartbeat, DestinationHeartbeat guest.Line
}

// Blackout is the destination's RESUME minus the source's STOP, both host
// timestamps.
func (r QEMUResult) Blackout() time.Duration { return r.Resume.Sub(r.Stop) }

// GuestDirtyRate is the rate, bytes per second, at which the guest wrote
// pages between its last heartbeat before the migration and its first
// after: it shows whether the guest kept its rate while it migrated.
func (r QEMUResult) GuestDirtyRate() float64 {
	secs := r.DestinationHeartbeat.Seq - r.SourceHeartbeat.Seq
	if secs == 0 || r.DestinationHeartbeat.Dirtied < r.SourceHeartbeat.Dirtied {
		return 0
	}
	return float64(r.DestinationHeartbeat.Dirtied-r.SourceHeartbeat.Dirtied) * 4096 / float64(secs)
}

// MigrateQEMU migrates src's guest to dst (started with Incoming) over
// loopback and returns the result once the guest runs on dst and has
// printed a heartbeat there.
func MigrateQEMU(ctx context.Context, src, dst *QEMU, s QEMUSettings) (QEMUResult, error) {
	var r QEMUResult
	if s.DowntimeLimit <= 0 || s.DowntimeLimit%time.Millisecond != 0 {
		return r, fmt.Errorf("qemu downtime limit %v: QMP takes whole milliseconds", s.DowntimeLimit)
	}
	caps := map[string]any{"capabilities": []map[string]any{{"capability": "events", "state": true}}}
	for _, q := range []*QEMU{src, dst} {
		if err := q.QMP.Execute(ctx, "migrate-set-capabilities", caps, nil); err != nil {
			return r, fmt.Errorf("qemu %s: %w", q.Name, err)
		}
	}
	bw := s.MaxBandwidth
	if bw == 0 {
		bw = noCapBandwidth
	}
	params := map[string]any{"downtime-limit": s.DowntimeLimit.Milliseconds(), "max-bandwidth": bw}
	if err := src.QMP.Execute(ctx, "migrate-set-parameters", params, nil); err != nil {
		return r, fmt.Errorf("qemu %s: %w", src.Name, err)
	}
	addr, err := dst.IncomingAddress(ctx)
	if err != nil {
		return r, err
	}
	hb, ok := src.Serial.LastHeartbeat()
	if !ok {
		return r, fmt.Errorf("qemu %s: the guest has not printed a heartbeat yet", src.Name)
	}
	srcMark, dstMark := len(src.QMP.Events()), len(dst.QMP.Events())
	if err := src.QMP.Execute(ctx, "migrate", map[string]any{"uri": "tcp:" + addr}, nil); err != nil {
		return r, fmt.Errorf("qemu %s: %w", src.Name, err)
	}
	end, _, err := src.QMP.WaitEvent(ctx, srcMark, func(e Event) bool {
		if e.Name != "MIGRATION" {
			return false
		}
		st := migrationStatus(e)
		return st == "completed" || st == "failed" || st == "cancelled"
	})
	if err != nil {
		return r, fmt.Errorf("qemu %s: waiting for the migration to end: %w", src.Name, err)
	}
	if r.Stats, err = finalStats(ctx, src); err != nil {
		return r, err
	}
	if st := migrationStatus(end); st != "completed" {
		return r, fmt.Errorf("qemu migration %s: %s", st, r.Stats.ErrorDesc)
	}
	for _, e := range src.QMP.Events()[srcMark:] {
		if e.Name == "MIGRATION_PASS" {
			r.Passes++
		}
	}
	stop, _, err := src.QMP.WaitEvent(ctx, srcMark, func(e Event) bool { return e.Name == "STOP" })
	if err != nil {
		return r, fmt.Errorf("qemu %s: STOP event: %w", src.Name, err)
	}
	resume, _, err := dst.QMP.WaitEvent(ctx, dstMark, func(e Event) bool { return e.Name == "RESUME" })
	if err != nil {
		return r, fmt.Errorf("qemu %s: RESUME event: %w", dst.Name, err)
	}
	r.Stop, r.Resume, r.SourceHeartbeat = stop.Time, resume.Time, hb
	// The guest must go on where it was: a later heartbeat, on dst.
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	after, err := dst.Serial.WaitFor(hctx, func(l guest.Line) bool {
		return l.Kind == guest.LineHeartbeat && l.Seq > hb.Seq
	})
	if err != nil {
		return r, fmt.Errorf("qemu %s: no heartbeat after the migration: %w", dst.Name, err)
	}
	r.DestinationHeartbeat = after
	return r, nil
}

// finalStats reads query-migrate once the migration thread has filled in
// its totals: QEMU announces "completed" before it computes total-time and
// downtime, and reports 0 for them until then.
func finalStats(ctx context.Context, q *QEMU) (QEMUStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		var st QEMUStats
		if err := q.QMP.Execute(ctx, "query-migrate", nil, &st); err != nil {
			return st, fmt.Errorf("qemu %s: %w", q.Name, err)
		}
		if st.Status != "completed" || st.TotalTime > 0 {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("qemu %s: query-migrate still reports no total-time: %w", q.Name, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
