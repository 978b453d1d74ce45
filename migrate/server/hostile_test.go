package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/schema"
)

// fakeSource plays a source by hand: it answers the stream upgrade, the
// version handshake and then sends Sync with spec, and reports what the
// destination answered.
func fakeSource(t *testing.T, spec vmm.Spec) (addr string, answer <-chan error) {
	t.Helper()
	specJSON, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- func() error {
			id, err := migrate.ParseID(r.URL.Query().Get("id"))
			if err != nil {
				return err
			}
			nc, err := wire.Upgrade(w, r)
			if err != nil {
				return err
			}
			defer nc.Close()
			ctx := context.Background()
			c := wire.NewConn(nc, wire.WithIOTimeout(5*time.Second))
			if _, err := wire.HandshakeServer(ctx, c, wire.SupportedVersions); err != nil {
				return err
			}
			if err := c.Send(ctx, &wire.Sync{MigrationID: id, SourceName: "hostile", Spec: specJSON}); err != nil {
				return err
			}
			_, err = wire.Expect[*wire.Okay](ctx, c)
			return err
		}()
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), ch
}

// A peer posing as a source with a spec no host here can hold, sent to a
// waiting server with one POST, is refused in Sync with vmm.ErrCapacity
// before anything is allocated; the server stays up and then takes a real
// migration. Before the capacity check, the 1 TiB spec killed the process
// ("fatal error: runtime: out of memory").
func TestHostileSourceSpecRefused(t *testing.T) {
	tests := []struct {
		name string
		spec vmm.Spec
		want string
	}{
		{"1 TiB of memory", vmm.Spec{Backend: "sim", MemoryBytes: 1 << 40, VCPUs: 1}, "memory 1 TiB is more than"},
		{"a million vcpus", vmm.Spec{Backend: "sim", MemoryBytes: 8 << 20, VCPUs: 1 << 20}, "1048576 vcpus is more than"},
		{"unknown backend", vmm.Spec{Backend: "qemu", MemoryBytes: 8 << 20, VCPUs: 1}, `backend "qemu": this host runs only "sim"`},
	}
	// One waiting server with its default limits, as `serve` runs, takes
	// every attempt in turn.
	dst := start(t, false, nil, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr, answer := fakeSource(t, tc.spec)
			_, err := dst.MigrateFrom(context.Background(), addr)
			if !errors.Is(err, vmm.ErrCapacity) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("destination error %v, want vmm.ErrCapacity saying %q", err, tc.want)
			}
			if ph, _ := migrate.FailedPhase(err); ph != schema.PhaseSync || !strings.Contains(err.Error(), "phase Sync") {
				t.Errorf("error names phase %v: %v; want Sync", ph, err)
			}
			var remote *wire.RemoteError
			if got := <-answer; !errors.As(got, &remote) || !strings.Contains(remote.Message, tc.want) {
				t.Errorf("the fake source heard %v, want the refusal %q", got, tc.want)
			}
			st := dst.Status()
			if st.State != StateFailed || dst.VM() != nil || st.Migration.ErrorPhase != schema.PhaseSync.String() {
				t.Errorf("destination after the refusal: %s, VM %v, %+v", st.State, dst.VM(), st.Migration)
			}
		})
	}
	// Still up, over HTTP too, and a real source's VM moves in.
	resp, err := http.Get("http://" + dst.addr + InstancePath)
	if err != nil {
		t.Fatalf("the destination no longer answers: %v", err)
	}
	resp.Body.Close()
	src := start(t, true, nil, nil)
	res, err := dst.MigrateFrom(context.Background(), src.addr)
	if err != nil {
		t.Fatalf("real migration after the refusals: %v", err)
	}
	if !res.Verified() || dst.Status().State != StateRunning {
		t.Errorf("real migration: verified %v, destination %s", res.Verified(), dst.Status().State)
	}
}
