package migrate

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/tracing/schema"
)

// Defaults for Config's zero values.
const (
	DefaultDowntimeTarget = 30 * time.Millisecond
	DefaultMaxRounds      = 12
	DefaultIOTimeout      = 30 * time.Second
	DefaultClockProbes    = 8
)

// Auto-converge's defaults, QEMU's: cpu-throttle-initial,
// cpu-throttle-increment and max-cpu-throttle, in percent.
const (
	DefaultThrottleInitial   = 20
	DefaultThrottleIncrement = 10
	DefaultThrottleMax       = vmm.MaxThrottle
)

// Metrics receives the migration's metrics; *tracing.Instruments
// implements it. A nil Metrics records nothing.
type Metrics interface {
	PhaseDone(ctx context.Context, role schema.Role, phase schema.Phase, d time.Duration, failed bool)
	RAMTransferred(ctx context.Context, role schema.Role, paused bool, bytes int64)
	MigrationDone(ctx context.Context, role schema.Role, result string)
	Downtime(ctx context.Context, d time.Duration)
	Blackout(ctx context.Context, d time.Duration)
	PrecopyRounds(ctx context.Context, role schema.Role, n int)
	TSCAdjustment(ctx context.Context, stage schema.Stage, ticks uint64)
	ClockOffset(ctx context.Context, offset, bound time.Duration)
	Throttle(ctx context.Context, role schema.Role, percent int)
}

// Config tunes one side of a migration. The zero value works.
type Config struct {
	// Name and Address identify this instance server to the peer.
	Name, Address string
	// Tracer records spans; nil records none.
	Tracer trace.Tracer
	// Metrics records metrics; nil records none.
	Metrics Metrics
	// Logger receives progress and warnings; nil discards them.
	Logger *slog.Logger
	// DowntimeTarget stops pre-copy once the remaining dirty pages could be
	// sent in this time at the bandwidth measured so far (source).
	DowntimeTarget time.Duration
	// MaxRounds bounds the pre-copy rounds (source).
	MaxRounds int
	// MaxBandwidth caps migration traffic in bytes per second; 0 = no cap.
	MaxBandwidth int64
	// AutoConverge throttles the guest's vCPUs, in steps, while pre-copy
	// rounds do not shrink its dirty set because it dirties memory faster
	// than the stream carries it, as QEMU's auto-converge does (source).
	// The throttle is lifted at the pause, or when the migration fails. A
	// VM whose backend cannot be throttled (vmm.Throttler) migrates
	// unthrottled. Read it through the side's live settings (side.live),
	// which an operator may change while the migration runs.
	AutoConverge bool
	// ThrottleInitial, ThrottleIncrement and ThrottleMax shape
	// auto-converge's steps, in percent of vCPU time asleep: the first
	// step, each one after, and the most. Zero takes QEMU's defaults
	// (DefaultThrottleInitial and so on); ThrottleMax is at most
	// vmm.MaxThrottle, and ThrottleInitial at most ThrottleMax.
	ThrottleInitial, ThrottleIncrement, ThrottleMax int
	// IOTimeout bounds every read and write on the migration stream.
	IOTimeout time.Duration
	// ClockProbes is the number of clock-offset exchanges in Sync
	// (destination).
	ClockProbes int
	// ClockSkewCorrection corrects the migration delta by the measured
	// wall-clock offset between the hosts (destination). Off by default,
	// which is propolis's behaviour: the hosts' clocks are trusted.
	ClockSkewCorrection bool
	// Limits bound the VM a destination accepts: it checks the source's
	// spec against them in Sync, before it allocates anything for the VM.
	// Zero fields take the host's defaults (vmm.Limits.WithDefaults), read
	// as each migration arrives; Backend is always the destination's own.
	Limits vmm.Limits
	// Progress, if set, is called as the migration advances.
	Progress func(Progress)
	// SkipVerify makes the destination record its handoff checks (memory
	// checksum, device state, guest TSC ring) without failing on them.
	SkipVerify bool
	// SkipMemoryChecksum is VerifyMemory: VerifyOff, which it overrides
	// (source).
	SkipMemoryChecksum bool
	// VerifyMemory is how the destination verifies guest memory against
	// the source's at pause (source; the destination follows). The zero
	// value is DefaultVerifyMemory.
	VerifyMemory VerifyMemory

	// Handoff is this side's handoff record, which the server serves to
	// the peer and to operators; nil gives the side a private one.
	Handoff *Handoff
	// AskPeer asks the peer's server for its handoff state when the
	// stream breaks during the handoff; nil leaves only an operator's
	// Handoff.Resolve to settle it.
	AskPeer AskPeer
	// AskPeerDigest asks the source's server for its memory digest when
	// the stream breaks before it, after the handoff (destination); nil
	// leaves the comparison unmade then.
	AskPeerDigest AskPeerDigest
	// PeerAPI is the source's API address, which the destination asks
	// (destination; the source learns the destination's in ServerState).
	PeerAPI string
	// OnPeerAPI, if set, is told the destination's API address when the
	// source learns it (source).
	OnPeerAPI func(addr string)

	// Control lets an operator cancel the migration or change its
	// settings while it runs; nil gives the side a private one.
	Control *Control
	// AskPeerCancelled asks the peer's server at addr whether it cancelled
	// migration id, and who asked it to, when this side failed without
	// being cancelled itself: the peer's cancel may have reached this
	// side only as a broken stream. nil asks nobody.
	AskPeerCancelled func(ctx context.Context, addr string, id ID) (by string, err error)
}

func (c Config) withDefaults() Config {
	if c.Tracer == nil {
		c.Tracer = noop.NewTracerProvider().Tracer(schema.ScopeName)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DowntimeTarget <= 0 {
		c.DowntimeTarget = DefaultDowntimeTarget
	}
	if c.MaxRounds <= 0 {
		c.MaxRounds = DefaultMaxRounds
	}
	if c.IOTimeout <= 0 {
		c.IOTimeout = DefaultIOTimeout
	}
	if c.ClockProbes <= 0 {
		c.ClockProbes = DefaultClockProbes
	}
	if c.ThrottleMax <= 0 || c.ThrottleMax > vmm.MaxThrottle {
		c.ThrottleMax = DefaultThrottleMax
	}
	if c.ThrottleInitial <= 0 {
		c.ThrottleInitial = DefaultThrottleInitial
	}
	c.ThrottleInitial = min(c.ThrottleInitial, c.ThrottleMax)
	if c.ThrottleIncrement <= 0 {
		c.ThrottleIncrement = DefaultThrottleIncrement
	}
	if c.Handoff == nil {
		c.Handoff = NewHandoff()
	}
	if c.Control == nil {
		c.Control = NewControl()
	}
	if c.SkipMemoryChecksum {
		c.VerifyMemory = VerifyOff
	} else if c.VerifyMemory == "" {
		c.VerifyMemory = DefaultVerifyMemory
	}
	return c
}

// Progress is a snapshot of a migration in flight.
type Progress struct {
	ID    ID
	Role  schema.Role
	Phase schema.Phase
	// Round is the pre-copy round (0-based) during RAM push.
	Round int
	// RoundPages and RoundDone are the pages in the current round and those
	// moved so far.
	RoundPages, RoundDone uint64
	// Bytes is the total moved over the wire so far.
	Bytes uint64
	// RemainingBytes estimates what is left in the current round.
	RemainingBytes uint64
	// Rate is the recent transfer rate in bytes per second.
	Rate float64
	// ETA estimates the time left in the current round.
	ETA time.Duration
}

// clockOrSystem returns the VM's clock, which is also the host clock phase
// timestamps are read from.
func clockOf(vm vmm.VM) vmm.Clock {
	if vm != nil {
		if c := vm.Clock(); c != nil {
			return c
		}
	}
	return vmm.SystemClock()
}
