package lab_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/lab"
	"github.com/migtrace/migtrace/migrate/server"
)

// migrateOnce asks dst to pull the VM from src (reached by dst at
// source) and returns both statuses once it has ended.
func migrateOnce(t *testing.T, ctx context.Context, src, dst *lab.Host, source string) (dstSt, srcSt server.InstanceStatus) {
	t.Helper()
	id, err := dst.Migrate(ctx, source)
	if err != nil {
		t.Fatal(err)
	}
	dstSt, err = dst.WaitMigration(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	m := dstSt.Migration
	if dstSt.State != server.StateRunning || m.Result != "success" || m.Role != "destination" {
		t.Fatalf("destination after migration %s: state %s, %s %s, error %q in %s", id, dstSt.State, m.Role, m.Result, m.Error, m.ErrorPhase)
	}
	if srcSt, err = src.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if srcSt.State != server.StateMigrated {
		t.Fatalf("source after migration %s: state %s, want migrated", id, srcSt.State)
	}
	if m.Detail == nil {
		t.Fatalf("destination reports no detail for migration %s", id)
	}
	return dstSt, srcSt
}

// A VM booted by serve in one host moves to serve in another through each
// kind of link: the destination runs it, the source has let it go, the
// bytes went over the link (its counters say so, and a rate limit shows
// in the migration's duration), and the destination's wall-clock offset
// estimate finds the source's --sim-wallclock-offset.
func TestMigrationBetweenHosts(t *testing.T) {
	const ms = time.Millisecond
	tests := []struct {
		name    string
		link    *lab.LinkOptions  // a veth link, when set
		proxy   *lab.ProxyOptions // else a proxy
		srcArgs []string
		settle  time.Duration // how long the guest dirties memory before the migration
		skew    time.Duration // the source's wall clock ahead of the destination's
	}{
		{name: "veth", link: &lab.LinkOptions{}},
		{name: "veth at 8 MB/s", link: &lab.LinkOptions{Rate: 8_000_000}, srcArgs: []string{"--dirty-rate", "4MiB"}, settle: time.Second},
		{name: "proxy with 5ms latency", proxy: &lab.ProxyOptions{Latency: 5 * ms}},
		{name: "source wall clock 3ms ahead", link: &lab.LinkOptions{}, srcArgs: []string{"--sim-wallclock-offset", "3ms"}, skew: 3 * ms},
		{name: "source wall clock 2ms behind", link: &lab.LinkOptions{}, srcArgs: []string{"--sim-wallclock-offset", "-2ms"}, skew: -2 * ms},
	}
	ctx := testCtx(t, 2*time.Minute)
	l := newLab(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := addHost(t, ctx, l, fmt.Sprintf("src%d", i), lab.HostOptions{})
			dst := addHost(t, ctx, l, fmt.Sprintf("dst%d", i), lab.HostOptions{})
			var source string
			var link *lab.Link
			if tc.link != nil {
				var err error
				if link, err = l.Link(ctx, src, dst, *tc.link); err != nil {
					t.Fatal(err)
				}
				source = link.ServeAddr(src)
			} else {
				p, err := l.Proxy(ctx, dst, src, lab.ServePort, *tc.proxy)
				if err != nil {
					t.Fatal(err)
				}
				source = p.Addr()
			}
			args := append([]string{"--boot", "--memory", "32MiB", "--dirty-rate", "8MiB"}, tc.srcArgs...)
			if err := src.Serve(ctx, args...); err != nil {
				t.Fatal(err)
			}
			if err := dst.Serve(ctx, "--memory", "32MiB"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(tc.settle)
			dstSt, _ := migrateOnce(t, ctx, src, dst, source)
			d := dstSt.Migration.Detail
			took := d.EndTime.Sub(d.StartTime)
			// The model records the destination's clock minus the source's;
			// the skew set is the source's clock ahead of the destination's.
			clock := d.ClockOffset
			srcAhead := -clock.OffsetNs
			t.Logf("%s: %d bytes received in %v, %d rounds; clock offset estimate %v ± %v (rtt %v)", tc.name, d.BytesReceived,
				took.Round(ms), d.PreCopyRounds(), time.Duration(srcAhead), time.Duration(clock.ErrorNs), time.Duration(clock.RTTNs))

			if link != nil {
				st, err := link.Stats(ctx, src)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s's end of %s sent %d bytes", src.Name(), link.Interface(), st.TxBytes)
				if st.TxBytes < uint64(d.BytesReceived) {
					t.Errorf("the link carried %d bytes from the source, less than the %d the destination received", st.TxBytes, d.BytesReceived)
				}
				if r := tc.link.Rate; r > 0 {
					if least := time.Duration(float64(d.BytesReceived) / float64(r) * float64(time.Second) * 0.9); took < least {
						t.Errorf("moving %d bytes at %d B/s took %v, want at least %v", d.BytesReceived, r, took, least)
					}
				}
			}
			// The true offset is the flag's: both hosts share one clock.
			diff := srcAhead - int64(tc.skew)
			if bound := clock.ErrorNs + int64(200*time.Microsecond); diff < -bound || diff > bound {
				t.Errorf("clock offset estimate %v, want %v within its error bound %v (+200µs)",
					time.Duration(srcAhead), tc.skew, time.Duration(clock.ErrorNs))
			}
		})
	}
}
