package peerbench

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/peerbench/guest"
)

// requireQEMU skips the test where the host cannot run the guest under
// KVM: no /dev/kvm or no qemu-system-x86_64. Anything else is a failure.
func requireQEMU(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/dev/kvm"); errors.Is(err, fs.ErrNotExist) {
		t.Skip("no /dev/kvm on this host")
	}
	path, err := exec.LookPath(DefaultQEMU)
	if err != nil {
		t.Skipf("no %s on this host (Debian package qemu-system-x86)", DefaultQEMU)
	}
	return path
}

// TestQEMUMigration boots the guest under KVM with a dirtying workload,
// reads its heartbeat from the serial port, and migrates it once to a
// second QEMU on loopback, checking every figure the benchmark uses.
func TestQEMUMigration(t *testing.T) {
	bin := requireQEMU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	kernel, err := guest.WriteFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	const memMiB = 64
	params, err := guest.ForMemory(memMiB, 32, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := QEMUConfig{Binary: bin, Kernel: kernel, MemoryMiB: memMiB, Params: params, Dir: dir}
	srcCfg, dstCfg := cfg, cfg
	srcCfg.Name, dstCfg.Name, dstCfg.Incoming = "src", "dst", "tcp:127.0.0.1:0"
	src, err := StartQEMU(ctx, srcCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Stop(context.Background())
	dst, err := StartQEMU(ctx, dstCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Stop(context.Background())

	banner, err := src.Serial.WaitFor(ctx, func(l guest.Line) bool { return l.Kind == guest.LineBanner })
	if err != nil {
		t.Fatalf("guest banner: %v\nserial: %q", err, src.Serial.Raw())
	}
	if banner.Params != params {
		t.Errorf("guest runs with %+v, want %+v", banner.Params, params)
	}
	// Real TSCs tick at hundreds of MHz at least.
	if banner.TSCkHz < 100_000 {
		t.Errorf("guest calibrated its TSC at %d kHz", banner.TSCkHz)
	}
	hb, err := src.Serial.WaitFor(ctx, func(l guest.Line) bool { return l.Kind == guest.LineHeartbeat && l.Seq >= 2 })
	if err != nil {
		t.Fatal(err)
	}
	// Two seconds at 32 MiB/s is 16384 pages; the pacing drops at most
	// 100 ms of writes after a stall, so allow a generous margin.
	if hb.Dirtied < 8192 || hb.Dirtied > 3*8192*hb.Seq {
		t.Errorf("heartbeat %d: %d pages dirtied, want about %d", hb.Seq, hb.Dirtied, 8192*hb.Seq)
	}

	res, err := MigrateQEMU(ctx, src, dst, QEMUSettings{MaxBandwidth: 1 << 30, DowntimeLimit: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Stats
	if st.Status != "completed" || st.TotalTime <= 0 {
		t.Errorf("query-migrate: status %q, total-time %d ms", st.Status, st.TotalTime)
	}
	if pages := (st.RAM.Normal + st.RAM.Duplicate) * st.RAM.PageSize; pages < memMiB<<20 {
		t.Errorf("qemu moved %d bytes of pages, less than the guest's %d MiB", pages, memMiB)
	}
	if st.RAM.DirtySyncCount < 2 || res.Passes < 1 {
		t.Errorf("dirty-sync-count %d, %d MIGRATION_PASS events", st.RAM.DirtySyncCount, res.Passes)
	}
	b := res.Blackout()
	if b <= 0 || b > 10*time.Second {
		t.Errorf("blackout %v (STOP %v, RESUME %v)", b, res.Stop, res.Resume)
	}
	if res.DestinationHeartbeat.Seq <= res.SourceHeartbeat.Seq || res.DestinationHeartbeat.Dirtied <= res.SourceHeartbeat.Dirtied {
		t.Errorf("after the migration the guest printed %+v, before it %+v", res.DestinationHeartbeat, res.SourceHeartbeat)
	}
	t.Logf("total %d ms, qemu downtime %d ms, blackout %v, %d passes, %d zero pages", st.TotalTime, st.Downtime, b, st.RAM.DirtySyncCount, st.RAM.Duplicate)
}
