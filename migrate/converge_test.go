package migrate

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/tracing"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// QEMU's trigger and steps, round by round: a round is high when the
// guest dirtied more than half the bytes it sent; every second high round
// steps the throttle, first to the initial percentage, then by the
// increment, up to the most.
func TestConvergerSteps(t *testing.T) {
	type round struct{ dirty, wire uint64 }
	high, low := round{600, 1000}, round{500, 1000} // exactly half is not high
	tests := []struct {
		name                    string
		initial, increment, max int
		rounds                  []round
		want                    []int // the throttle after each round
	}{
		{"QEMU's defaults", DefaultThrottleInitial, DefaultThrottleIncrement, DefaultThrottleMax,
			[]round{high, high, high, high, high, high},
			[]int{0, 20, 20, 30, 30, 40}},
		{"high rounds need not be consecutive", 20, 10, 99,
			[]round{high, low, high, low, low, high, high},
			[]int{0, 0, 20, 20, 20, 20, 30}},
		{"a round that shrinks the dirty set steps nothing", 20, 10, 99,
			[]round{low, low, low, low},
			[]int{0, 0, 0, 0}},
		{"capped at the most", 90, 10, 99,
			[]round{high, high, high, high, high, high},
			[]int{0, 90, 90, 99, 99, 99}},
		{"a guest that dirties nothing is never throttled", 20, 10, 99,
			[]round{{0, 0}, {0, 4096}},
			[]int{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := converger{initial: tc.initial, increment: tc.increment, max: tc.max}
			var got []int
			prev := 0
			for i, r := range tc.rounds {
				pct, step := c.observe(r.dirty, r.wire)
				if step != (pct != prev) {
					t.Errorf("round %d: throttle %d after %d, but step = %v", i, pct, prev, step)
				}
				got, prev = append(got, pct), pct
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("throttle after each round %v, want %v", got, tc.want)
			}
		})
	}
}

// metricsRecorder records the source's throttle gauge; the rest of
// Metrics goes to a nil *tracing.Instruments, which records nothing.
type metricsRecorder struct {
	*tracing.Instruments
	mu       sync.Mutex
	throttle []int
}

func (m *metricsRecorder) Throttle(_ context.Context, r schema.Role, percent int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r == schema.RoleSource {
		m.throttle = append(m.throttle, percent)
	}
}

func (m *metricsRecorder) throttles() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.throttle...)
}

// convergeSetup is a guest that dirties memory twice as fast as the
// migration's bandwidth cap carries it, so that without a throttle every
// round's dirty set outgrows the last: 8 MiB/s into 4 MiB of memory over
// a 4 MiB/s cap. The downtime target, 250 ms, is 1 MiB at the cap.
var convergeSetup = struct {
	opts   []sim.Option
	cfg    Config
	before uint64 // pages the guest has written when the migration starts
}{
	opts: []sim.Option{sim.WithMemory(4 << 20), sim.WithDirtyRate(8 << 20)},
	cfg: Config{MaxBandwidth: 4 << 20, DowntimeTarget: 250 * time.Millisecond, MaxRounds: 4,
		// From 90 % at once: at QEMU's 20 %, +10 % every two rounds, the
		// guest would need twelve rounds to fall under the link's rate.
		ThrottleInitial: 90, IOTimeout: 10 * time.Second},
	// 1 MiB: a first round of 250 ms, long enough for the rate measured
	// to be the cap's and not the limiter's burst.
	before: 256,
}

// waitDirty waits until the guest has written pages distinct pages.
func waitDirty(t *testing.T, vm *sim.VM, pages uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n, err := vm.DirtyCount()
		if err != nil {
			t.Fatal(err)
		}
		if n >= pages {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the guest wrote %d pages in 10s, want %d", n, pages)
		}
	}
}

// A guest dirtying memory faster than the bandwidth cap: without
// auto-converge the rounds run to the limit, each dirty set larger than
// the one before, and what is left would overshoot the downtime target at
// the cap; with it the
// guest is throttled, the dirty set shrinks under the target and the
// downtime holds, and the throttle is lifted at the pause.
func TestAutoConverge(t *testing.T) {
	for _, autoConverge := range []bool{false, true} {
		name := map[bool]string{false: "without auto-converge", true: "with auto-converge"}[autoConverge]
		t.Run(name, func(t *testing.T) {
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			metrics := &metricsRecorder{}
			cfg := convergeSetup.cfg
			cfg.AutoConverge, cfg.Tracer, cfg.Metrics = autoConverge, tp.Tracer(schema.ScopeName), metrics
			p := newPair(t, cfg, convergeSetup.opts...)
			waitDirty(t, p.srcVM, convergeSetup.before)
			ctx := context.Background()
			id := NewID()
			p.serve(ctx, id, cfg, nil)
			vm, _, err := RunDestination(ctx, p.dialer(), p.backend, id, Config{IOTimeout: 10 * time.Second})
			if err != nil {
				t.Fatalf("destination: %v", err)
			}
			defer vm.Destroy()
			out := <-p.srcRes
			if out.err != nil {
				t.Fatalf("source: %v", out.err)
			}
			src := out.res
			downtime := time.Duration(src.DowntimeNs)
			for _, r := range src.PrecopyRounds {
				t.Logf("round %d: %d pages (%d zero), %d wire bytes in %v; %d dirty after",
					r.Round, r.Pages, r.ZeroPages, r.WireBytes, time.Duration(r.RoundNs).Round(time.Millisecond), r.DirtyPages)
			}
			t.Logf("%d rounds, throttle steps %+v, downtime %v (target %v)", src.PreCopyRounds(), src.ThrottleSteps,
				downtime.Round(time.Millisecond), cfg.DowntimeTarget)

			rounds := src.PrecopyRounds
			first, last := rounds[0].DirtyPages, rounds[len(rounds)-1].DirtyPages
			if !autoConverge {
				if last < first {
					t.Errorf("the dirty set shrank from %d to %d pages without a throttle", first, last)
				}
				if n := src.PreCopyRounds(); n != int64(cfg.MaxRounds) {
					t.Errorf("%d pre-copy rounds, want the limit %d: the dirty set should never fit", n, cfg.MaxRounds)
				}
				// What is left would overshoot the target at the cap; the
				// downtime itself need not, since the cap lifts at the pause.
				if atCap := time.Duration(float64(last*vmm.PageSize) / float64(cfg.MaxBandwidth) * float64(time.Second)); atCap <= cfg.DowntimeTarget {
					t.Errorf("the last round left %d dirty pages, %v at the cap, within the %v target: the guest did not outpace the cap",
						last, atCap, cfg.DowntimeTarget)
				}
				if len(src.ThrottleSteps) != 0 || len(metrics.throttles()) != 0 {
					t.Errorf("throttled without auto-converge: steps %+v, gauge %v", src.ThrottleSteps, metrics.throttles())
				}
				return
			}
			if n := src.PreCopyRounds(); n >= int64(cfg.MaxRounds) {
				t.Errorf("%d pre-copy rounds, the limit: the throttle did not make the dirty set fit", n)
			}
			if downtime > cfg.DowntimeTarget {
				t.Errorf("downtime %v over the %v target", downtime, cfg.DowntimeTarget)
			}
			if last >= first {
				t.Errorf("the throttled guest's dirty set went from %d to %d pages: it did not shrink", first, last)
			}
			// Two rounds that each dirty more than half what they sent
			// trigger the first step, to 90 %, after round 1.
			if want := []model.ThrottleStep{{Round: 1, Percent: 90}}; !reflect.DeepEqual(src.ThrottleSteps, want) {
				t.Errorf("throttle steps %+v, want %+v", src.ThrottleSteps, want)
			}
			// The gauge: armed at 0, each step, lifted at the pause.
			if got, want := metrics.throttles(), []int{0, 90, 0}; !reflect.DeepEqual(got, want) {
				t.Errorf("throttle gauge went %v, want %v", got, want)
			}
			var events []int64
			for _, s := range rec.Ended() {
				if s.Name() != schema.PhaseRamPushPrePause.String() {
					continue
				}
				for _, e := range s.Events() {
					if e.Name != schema.EventThrottle {
						continue
					}
					for _, kv := range e.Attributes {
						if string(kv.Key) == schema.AttrThrottlePercent {
							events = append(events, kv.Value.AsInt64())
						}
					}
				}
			}
			if !reflect.DeepEqual(events, []int64{90}) {
				t.Errorf("throttle events on the RamPushPrePause span carry %v, want [90]", events)
			}
		})
	}
}

// A migration that fails after auto-converge throttled the guest leaves
// the guest running on the source at full speed.
func TestThrottleLiftedAfterFailure(t *testing.T) {
	cfg := convergeSetup.cfg
	cfg.AutoConverge = true
	// Enough rounds that the cut, in the first round after the step,
	// comes before pre-copy would end.
	cfg.MaxRounds = 12
	slot := &connSlot{}
	p := newPair(t, cfg, convergeSetup.opts...)
	var once sync.Once
	cfg.Progress = func(pr Progress) {
		if pr.Phase == schema.PhaseRamPushPrePause && p.srcVM.Throttle() > 0 {
			once.Do(slot.drop)
		}
	}
	waitDirty(t, p.srcVM, convergeSetup.before)
	ctx := context.Background()
	id := NewID()
	p.serve(ctx, id, cfg, slot.set)
	if _, _, err := RunDestination(ctx, p.dialer(), p.backend, id, Config{IOTimeout: 10 * time.Second}); err == nil {
		t.Fatal("the migration succeeded through a cut connection")
	}
	out := <-p.srcRes
	if out.err == nil {
		t.Fatal("the source reported success")
	}
	if ph, _ := FailedPhase(out.err); ph != schema.PhaseRamPushPrePause {
		t.Errorf("failed in %v, want RamPushPrePause: %v", ph, out.err)
	}
	if len(out.res.ThrottleSteps) == 0 {
		t.Fatalf("the migration failed before any throttle step: %v", out.err)
	}
	if st := p.srcVM.State(); st != vmm.StateRunning {
		t.Errorf("source VM %v after the failure, want running", st)
	}
	if got := p.srcVM.Throttle(); got != 0 {
		t.Errorf("source VM still throttled at %d %% after the failure", got)
	}
}

// A VM whose backend cannot be throttled migrates unthrottled, without
// failing, when auto-converge is on.
func TestAutoConvergeWithoutThrottler(t *testing.T) {
	cfg := Config{AutoConverge: true, IOTimeout: 10 * time.Second}
	p := newPair(t, cfg, sim.WithMemory(4<<20), sim.WithDirtyRate(4<<20))
	ctx := context.Background()
	id := NewID()
	go func() {
		nc, err := p.ln.Accept()
		if err != nil {
			p.srcRes <- sourceOutcome{err: err}
			return
		}
		res, err := RunSource(ctx, nc, unthrottleable{p.srcVM}, id, cfg)
		p.srcRes <- sourceOutcome{res, err}
	}()
	vm, _, err := RunDestination(ctx, p.dialer(), p.backend, id, cfg)
	if err != nil {
		t.Fatalf("destination: %v", err)
	}
	defer vm.Destroy()
	if out := <-p.srcRes; out.err != nil || len(out.res.ThrottleSteps) != 0 {
		t.Errorf("source: %v, throttle steps %+v", out.err, out.res.ThrottleSteps)
	}
}

// unthrottleable hides a VM's Throttler.
type unthrottleable struct{ vmm.VM }
