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
func (t *tlsFlags) httpClient(timeout time.Duration) (hc *http.Client, secure bool, err error) {
	conf, err := t.client()
	if err != nil {
		return nil, false, err
	}
	if conf == nil {
		return &http.Client{Timeout: timeout}, false, nil
	}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: conf}}, true, nil
}

// tuningFlags tune migrations.
type tuningFlags struct {
	maxBandwidth   rateFlag
	downtimeTarget positiveDurationFlag
	maxRounds      positiveIntFlag
	skewCorrection bool
	ioTimeout      positiveDurationFlag
	skipChecksum   bool
	autoConverge   bool
	// throttleInitial, throttleIncrement and throttleMax shape
	// --auto-converge's steps, with QEMU's names and defaults.
	throttleInitial, throttleIncrement, throttleMax percentFlag
	verifyMemory                                    verifyFlag
}

func (f *tuningFlags) register(fs *pflag.FlagSet) {
	f.downtimeTarget.d, f.maxRounds.n, f.ioTimeout.d = migrate.DefaultDowntimeTarget, migrate.DefaultMaxRounds, migrate.DefaultIOTimeout
	fs.Var(&f.maxBandwidth, "max-bandwidth", "cap migration traffic at `RATE` per second (e.g. 100MiB) while the guest runs (lifted once it pauses, as QEMU does); 0 = no cap")
	fs.Var(&f.downtimeTarget, "downtime-target", "stop pre-copy when the rest fits in this time at the measured bandwidth")
	fs.Var(&f.maxRounds, "max-rounds", "most pre-copy rounds before pausing")
	fs.BoolVar(&f.skewCorrection, "clock-skew-correction", false, "correct the migration delta by the measured wall-clock offset between the hosts")
	fs.Var(&f.ioTimeout, "io-timeout", "deadline for every read and write on the migration stream")
	f.throttleInitial.n, f.throttleIncrement.n, f.throttleMax.n = migrate.DefaultThrottleInitial, migrate.DefaultThrottleIncrement, migrate.DefaultThrottleMax
	fs.BoolVar(&f.autoConverge, "auto-converge", false, "as a source, throttle the guest's vCPUs in steps while pre-copy rounds do not shrink its dirty set (QEMU's auto-converge)")
	fs.Var(&f.throttleInitial, "cpu-throttle-initial", "with --auto-converge, the first throttle step, in `PERCENT` of vCPU time asleep")
	fs.Var(&f.throttleIncrement, "cpu-throttle-increment", "with --auto-converge, how much each later step adds, in `PERCENT`")
	fs.Var(&f.throttleMax, "max-cpu-throttle", "with --auto-converge, the most the guest is throttled, in `PERCENT` (--cpu-throttle-initial is capped at it)")
	fs.BoolVar(&f.skipChecksum, "skip-memory-checksum", false, "the same as --verify-memory off, which it overrides")
	f.verifyMemory.v = migrate.DefaultVerifyMemory
	fs.Var(&f.verifyMemory, "verify-memory", "as a source, how the destination verifies guest memory against the source's at pause: "+
		"full (all of it, before the handoff, in the downtime), sampled (1024 random pages before the handoff, all of it after), "+
		"after (all of it after the handoff: detects, cannot prevent) or off")
}

// verifyFlag is --verify-memory.
type verifyFlag struct{ v migrate.VerifyMemory }

func (f *verifyFlag) String() string { return string(f.v) }
func (f *verifyFlag) Type() string   { return "mode" }
func (f *verifyFlag) Set(s string) error {
	v, err := migrate.ParseVerifyMemory(s)
	if err != nil {
		return err
	}
	f.v = v
	return nil
}

func (f *tuningFlags) config() migrate.Config {
	return migrate.Config{
		MaxBandwidth:        int64(f.maxBandwidth.bytesPerSec),
		DowntimeTarget:      f.downtimeTarget.d,
		MaxRounds:           f.maxRounds.n,
		ClockSkewCorrection: f.skewCorrection,
		IOTimeout:           f.ioTimeout.d,
		SkipMemoryChecksum:  f.skipChecksum,
		AutoConverge:        f.autoConverge,
		ThrottleInitial:     f.throttleInitial.n,
		ThrottleIncrement:   f.throttleIncrement.n,
		ThrottleMax:         f.throttleMax.n,
		VerifyMemory:        f.verifyMemory.v,
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

// build returns the backend and the spec of a VM to boot on it, after
// checking the VM's shape against limits (see capacityFlags), so that a
// VM this host cannot hold is a usage error, not a crash.
func (f *vmFlags) build(limits vmm.Limits) (vmm.Backend, vmm.Spec, error) {
	if f.vcpus < 1 {
		return nil, vmm.Spec{}, usageErrorf("--vcpus %d: need at least 1", f.vcpus)
	}
	lim := limits.WithDefaults()
	if f.vcpus > lim.MaxVCPUs {
		return nil, vmm.Spec{}, usageErrorf("--vcpus %d is more than --max-vcpus %d", f.vcpus, lim.MaxVCPUs)
	}
	if f.memory.bytes > lim.MaxMemoryBytes {
		return nil, vmm.Spec{}, usageErrorf("--memory %s is more than this host can hold: %s", vmm.FormatBytes(f.memory.bytes), limitSource(limits, lim))
	}
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

// limitSource says where a memory limit came from: the flag, or the host.
func limitSource(given, effective vmm.Limits) string {
	if given.MaxMemoryBytes != 0 {
		return "--max-guest-memory is " + vmm.FormatBytes(effective.MaxMemoryBytes)
	}
	avail, how := vmm.HostMemory()
	return fmt.Sprintf("it can spare %s (%s: %s, less a quarter kept back; --max-guest-memory overrides)",
		vmm.FormatBytes(effective.MaxMemoryBytes), how, vmm.FormatBytes(avail))
}

// capacityFlags bound the VMs a server hosts: the one it boots and those
// that migrate in, which a destination checks in Sync before it allocates
// anything.
type capacityFlags struct {
	maxMemory sizeFlag // 0: the host's default, read as each VM arrives
	maxVCPUs  int
}

func (f *capacityFlags) register(fs *pflag.FlagSet) {
	fs.Var(&f.maxMemory, "max-guest-memory", "most guest memory `SIZE` this server hosts, booted or migrating in "+
		"(default: what the host can spare when the VM arrives: three quarters of MemAvailable, or of the address space left under ulimit -v)")
	fs.IntVar(&f.maxVCPUs, "max-vcpus", vmm.DefaultMaxVCPUs(), "most vCPUs a VM on this server may have (default: the host's CPUs)")
}

// limits returns the limits the flags give; zero memory is the host's
// default, filled in when it is needed.
func (f *capacityFlags) limits(fs *pflag.FlagSet) (vmm.Limits, error) {
	if fs.Changed("max-guest-memory") && f.maxMemory.bytes == 0 {
		return vmm.Limits{}, usageErrorf("--max-guest-memory 0: a server must be able to host some memory")
	}
	if f.maxVCPUs < 1 {
		return vmm.Limits{}, usageErrorf("--max-vcpus %d: need at least 1", f.maxVCPUs)
	}
	return vmm.Limits{MaxMemoryBytes: f.maxMemory.bytes, MaxVCPUs: f.maxVCPUs}, nil
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

// checkAddr refuses a HOST:PORT flag value whose port is not a TCP port
// (0 to 65535, or a service name); listen also allows 0, any free port.
func checkAddr(flag, addr string, listen bool) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("%s %q: want HOST:PORT: %v", flag, addr, err)
	}
	n, err := net.LookupPort("tcp", port)
	if err != nil {
		return usageErrorf("%s %q: port %q: want a number from 0 to 65535 or a service name", flag, addr, port)
	}
	if n == 0 && !listen {
		return usageErrorf("%s %q: want a port from 1 to 65535", flag, addr)
	}
	return nil
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
