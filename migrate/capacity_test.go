package migrate

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/schema"
)

// watchedBackend counts the VMs a destination asks its backend for, and
// can run under another name: a backend the source's VM does not use.
type watchedBackend struct {
	vmm.Backend
	name string
	news atomic.Int32
}

func (b *watchedBackend) Name() string {
	if b.name != "" {
		return b.name
	}
	return b.Backend.Name()
}

func (b *watchedBackend) New(spec vmm.Spec) (vmm.VM, error) {
	b.news.Add(1)
	return b.Backend.New(spec)
}

// A destination refuses, in Sync and before it allocates anything, a spec
// beyond its limits; both sides name Sync and the reason, the source's VM
// keeps running, and it can still migrate to a destination that fits it.
func TestDestinationRefusesSpecBeyondLimits(t *testing.T) {
	tests := []struct {
		name   string
		opts   []sim.Option // the source VM's shape
		limits vmm.Limits
		other  bool // the destination runs another backend
		want   string
	}{
		{"memory", []sim.Option{sim.WithMemory(4 << 20)}, vmm.Limits{MaxMemoryBytes: 2 << 20}, false,
			"memory 4 MiB is more than the 2 MiB this host allows"},
		{"vcpus", []sim.Option{sim.WithMemory(4 << 20), sim.WithVCPUs(2)}, vmm.Limits{MaxVCPUs: 1}, false,
			"2 vcpus is more than the 1 this host allows"},
		{"backend", []sim.Option{sim.WithMemory(4 << 20)}, vmm.Limits{}, true,
			`backend "sim": this host runs only "other"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			p := newPair(t, Config{}, append(tc.opts, sim.WithDirtyRate(1<<20))...)
			dstBackend := &watchedBackend{Backend: p.backend}
			if tc.other {
				dstBackend.name = "other"
			}
			id := NewID()
			p.serve(ctx, id, Config{IOTimeout: 5 * time.Second}, nil)
			vm, _, dstErr := RunDestination(ctx, p.dialer(), dstBackend, id,
				Config{IOTimeout: 5 * time.Second, Limits: tc.limits})
			out := <-p.srcRes
			if vm != nil || dstBackend.news.Load() != 0 {
				t.Errorf("destination made %d VMs for a spec it refuses", dstBackend.news.Load())
			}
			if !errors.Is(dstErr, vmm.ErrCapacity) || !strings.Contains(dstErr.Error(), tc.want) {
				t.Errorf("destination error %v, want vmm.ErrCapacity saying %q", dstErr, tc.want)
			}
			var remote *wire.RemoteError
			if !errors.As(out.err, &remote) || !strings.Contains(remote.Message, tc.want) {
				t.Errorf("source error %v, want the destination's reason %q", out.err, tc.want)
			}
			for side, err := range map[string]error{"destination": dstErr, "source": out.err} {
				if ph, ok := FailedPhase(err); !ok || ph != schema.PhaseSync {
					t.Errorf("%s failed in %v, want Sync: %v", side, ph, err)
				}
			}
			if st := p.srcVM.State(); st != vmm.StateRunning {
				t.Fatalf("source VM %v after the refusal, want running", st)
			}
			before, err := p.srcVM.ReadTimeData(ctx)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
			after, err := p.srcVM.ReadTimeData(ctx)
			if err != nil || after.GuestTSC <= before.GuestTSC {
				t.Errorf("source guest TSC %d -> %d (%v): the guest is not running", before.GuestTSC, after.GuestTSC, err)
			}

			// The source is unharmed: a destination with room takes the VM.
			id = NewID()
			p.serve(ctx, id, Config{IOTimeout: 5 * time.Second}, nil)
			vm, _, err = RunDestination(ctx, p.dialer(), p.backend, id,
				Config{IOTimeout: 5 * time.Second, Limits: vmm.Limits{MaxVCPUs: 4}})
			if err != nil {
				t.Fatalf("migration to a destination with room: %v", err)
			}
			_ = vm.Destroy()
			if out := <-p.srcRes; out.err != nil {
				t.Errorf("source of the second migration: %v", out.err)
			}
		})
	}
}
