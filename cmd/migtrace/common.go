package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/kvm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing"
)

// tlsFlags are --tls-cert, --tls-key and --tls-ca: all three or none.
type tlsFlags struct{ cert, key, ca string }

func (t *tlsFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&t.cert, "tls-cert", "", "PEM certificate `FILE` for mutual TLS 1.3")
	fs.StringVar(&t.key, "tls-key", "", "PEM private key `FILE` for --tls-cert")
	fs.StringVar(&t.ca, "tls-ca", "", "PEM CA `FILE`: peers must present a certificate it signed")
}

func (t *tlsFlags) enabled() (bool, error) {
	set := 0
	for _, v := range []string{t.cert, t.key, t.ca} {
		if v != "" {
			set++
		}
	}
	switch set {
	case 0:
		return false, nil
	case 3:
		return true, nil
	}
	return false, usageErrorf("--tls-cert, --tls-key and --tls-ca go together: give all three or none")
}

// server and client return the TLS configs, nil when TLS is off.
func (t *tlsFlags) server() (*tls.Config, error) {
	if on, err := t.enabled(); !on || err != nil {
		return nil, err
	}
	return wire.ServerTLSConfig(t.cert, t.key, t.ca)
}

func (t *tlsFlags) client() (*tls.Config, error) {
	if on, err := t.enabled(); !on || err != nil {
		return nil, err
	}
	return wire.ClientTLSConfig(t.cert, t.key, t.ca)
}

// httpClient talks to instance servers' HTTP APIs.
func (t *tlsFlags) httpClient(timeout time.Duration) (*http.Client, string, error) {
	conf, err := t.client()
	if err != nil {
		return nil, "", err
	}
	if conf == nil {
		return &http.Client{Timeout: timeout}, "http", nil
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: conf}}, "https", nil
}

// tuningFlags tune migrations.
type tuningFlags struct {
	maxBandwidth   rateFlag
	downtimeTarget time.Duration
	maxRounds      int
	skewCorrection bool
	ioTimeout      time.Duration
	skipChecksum   bool
}

func (f *tuningFlags) register(fs *pflag.FlagSet) {
	fs.Var(&f.maxBandwidth, "max-bandwidth", "cap migration traffic at `RATE` per second (e.g. 100MiB); 0 = no cap")
	fs.DurationVar(&f.downtimeTarget, "downtime-target", migrate.DefaultDowntimeTarget, "stop pre-copy when the rest fits in this time at the measured bandwidth")
	fs.IntVar(&f.maxRounds, "max-rounds", migrate.DefaultMaxRounds, "most pre-copy rounds before pausing")
	fs.BoolVar(&f.skewCorrection, "clock-skew-correction", false, "correct the migration delta by the measured wall-clock offset between the hosts")
	fs.DurationVar(&f.ioTimeout, "io-timeout", migrate.DefaultIOTimeout, "deadline for every read and write on the migration stream")
	fs.BoolVar(&f.skipChecksum, "skip-memory-checksum", false, "as a source, do not checksum guest memory at pause: shorter downtime, but the destination cannot verify memory")
}

func (f *tuningFlags) config() migrate.Config {
	return migrate.Config{
		MaxBandwidth:        int64(f.maxBandwidth.bytesPerSec),
		DowntimeTarget:      f.downtimeTarget,
		MaxRounds:           f.maxRounds,
		ClockSkewCorrection: f.skewCorrection,
		IOTimeout:           f.ioTimeout,
		SkipMemoryChecksum:  f.skipChecksum,
	}
}

// vmFlags choose and shape the VM.
type vmFlags struct {
	backend   string
	memory    sizeFlag
	dirtyRate rateFlag
	vcpus     int
	// wallOffset is --sim-wallclock-offset, registered only where each
	// host has its own backend (serve), since an offset shared by both
	// ends of a migration shows nothing.
	wallOffset time.Duration
}

func (f *vmFlags) register(fs *pflag.FlagSet) {
	f.memory.bytes = sim.DefaultMemoryBytes
	f.dirtyRate.bytesPerSec = uint64(sim.DefaultDirtyRate)
	fs.StringVar(&f.backend, "backend", "sim", "VM backend: sim (simulated, runs anywhere) or kvm (a real guest; Linux, /dev/kvm)")
	fs.Var(&f.memory, "memory", "guest memory `SIZE` (e.g. 256MiB)")
	fs.Var(&f.dirtyRate, "dirty-rate", "guest workload's memory dirtying `RATE` per second (e.g. 64MiB)")
	fs.IntVar(&f.vcpus, "vcpus", 1, "guest vCPUs")
}

// registerSimClock adds --sim-wallclock-offset.
func (f *vmFlags) registerSimClock(fs *pflag.FlagSet) {
	fs.DurationVar(&f.wallOffset, "sim-wallclock-offset", 0, "with --backend sim, make this host's wall clock read `DURATION` ahead (negative: behind), as a host whose NTP is off")
}

// build returns the backend and the spec of a VM to boot on it.
func (f *vmFlags) build() (vmm.Backend, vmm.Spec, error) {
	switch f.backend {
	case "sim":
		opts := []sim.Option{sim.WithMemory(f.memory.bytes), sim.WithVCPUs(f.vcpus), sim.WithDirtyRate(int64(f.dirtyRate.bytesPerSec))}
		if f.wallOffset != 0 {
			opts = append(opts, sim.WithWallclockOffset(f.wallOffset))
		}
		b, err := sim.New(opts...)
		if err != nil {
			return nil, vmm.Spec{}, usageErrorf("--backend sim: %v", err)
		}
		return b, b.DefaultSpec(), nil
	case kvm.BackendName:
		if f.vcpus != 1 {
			return nil, vmm.Spec{}, usageErrorf("--backend kvm runs 1 vCPU, not %d", f.vcpus)
		}
		if f.wallOffset != 0 {
			return nil, vmm.Spec{}, usageErrorf("--sim-wallclock-offset applies to --backend sim only")
		}
		b, err := kvm.New(kvm.WithMemory(f.memory.bytes), kvm.WithDirtyRate(int64(f.dirtyRate.bytesPerSec)))
		if err != nil {
			return nil, vmm.Spec{}, fmt.Errorf("--backend kvm: %w", err)
		}
		return b, b.DefaultSpec(), nil
	}
	return nil, vmm.Spec{}, usageErrorf("--backend %q: want sim or kvm", f.backend)
}

// telemetryFlags set where spans and metrics go.
type telemetryFlags struct {
	traceFile string
	logLevel  string
	errw      *lockedWriter
}

func (f *telemetryFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.traceFile, "trace-file", "", "write every span to `FILE` as OTLP JSON Lines (read it with 'migtrace report')")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
}

// logger logs to stderr through stderr(cmd), so that log lines and
// progress lines written from other goroutines never interleave.
func (f *telemetryFlags) logger(cmd *cobra.Command) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageErrorf("--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	return slog.New(slog.NewTextHandler(f.stderr(cmd), &slog.HandlerOptions{Level: level})), nil
}

func (f *telemetryFlags) stderr(cmd *cobra.Command) *lockedWriter {
	if f.errw == nil {
		f.errw = &lockedWriter{w: cmd.ErrOrStderr()}
	}
	return f.errw
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// isTerminal reports whether w writes to a terminal.
func isTerminal(w io.Writer) bool {
	if l, ok := w.(*lockedWriter); ok {
		w = l.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (f *telemetryFlags) setup(ctx context.Context, service string, prometheus bool) (*tracing.Telemetry, error) {
	t, err := tracing.Setup(ctx, tracing.Config{
		ServiceName:    service,
		ServiceVersion: version,
		TraceFile:      f.traceFile,
		Env:            true,
		Prometheus:     prometheus,
	})
	if err != nil {
		return nil, fmt.Errorf("setting up telemetry: %w", err)
	}
	return t, nil
}

// shutdownTelemetry flushes everything with a deadline, so nothing is lost.
func shutdownTelemetry(t *tracing.Telemetry, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Error("flushing telemetry", "err", err)
	}
}

// isLoopback reports whether a listen address only accepts local peers.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "migtrace"
	}
	return strings.SplitN(h, ".", 2)[0]
}
