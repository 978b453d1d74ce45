package migrate

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/schema"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(b testing.TB) (net.Conn, net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	return c, <-accepted
}

// BenchmarkRAMPush sends every page of a 64 MiB guest full of random data
// through the protocol's RAM push, and, in the same iteration, copies the
// same number of bytes over a raw loopback TCP connection: the ratio is
// the protocol's share of what the loopback can carry.
func BenchmarkRAMPush(b *testing.B) {
	const memBytes = 64 << 20
	backend, err := sim.New(sim.WithMemory(memBytes), sim.WithDirtyRate(0))
	if err != nil {
		b.Fatal(err)
	}
	srcVM, err := backend.NewVM(backend.DefaultSpec())
	if err != nil {
		b.Fatal(err)
	}
	dstVM, err := backend.NewVM(backend.DefaultSpec())
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, memBytes)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	if err := srcVM.WritePages(0, data); err != nil {
		b.Fatal(err)
	}
	sc, dc := tcpPair(b)
	defer sc.Close()
	defer dc.Close()
	src := &side{cfg: Config{}.withDefaults(), role: schema.RoleSource, clock: vmm.SystemClock(), result: &Result{}, conn: wire.NewConn(sc)}
	dst := &side{cfg: Config{}.withDefaults(), role: schema.RoleDestination, clock: vmm.SystemClock(), result: &Result{}, conn: wire.NewConn(dc)}
	sender, receiver := newRAMSender(src, srcVM), newRAMReceiver(dst, dstVM)
	all := newBitmap(sender.pages)
	all.fill(sender.pages)

	rawA, rawB := tcpPair(b)
	defer rawA.Close()
	defer rawB.Close()
	ctx := context.Background()
	var pushTime, rawTime time.Duration
	b.SetBytes(memBytes)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		errc := make(chan error, 1)
		go func() {
			begin, err := wire.Expect[*wire.RoundBegin](ctx, dst.conn)
			if err == nil {
				_, err = receiver.recvRound(ctx, begin)
			}
			errc <- err
		}()
		if _, err := sender.sendRound(ctx, i, false, all); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		pushTime += time.Since(start)

		start = time.Now()
		go func() {
			_, err := io.CopyN(io.Discard, rawB, memBytes)
			errc <- err
		}()
		for off := 0; off < memBytes; off += 1 << 20 {
			if _, err := rawA.Write(data[off : off+1<<20]); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		rawTime += time.Since(start)
	}
	b.StopTimer()
	mb := float64(memBytes) * float64(b.N) / (1 << 20)
	b.ReportMetric(mb/pushTime.Seconds(), "push-MiB/s")
	b.ReportMetric(mb/rawTime.Seconds(), "raw-MiB/s")
	b.ReportMetric(rawTime.Seconds()/pushTime.Seconds(), "push/raw")
}

// BenchmarkMigration256MiB migrates a 256 MiB guest dirtying 64 MiB/s,
// end to end over loopback, and reports the medians of the source's
// downtime (pause to handoff), the blackout across both sides and the
// TimeData phase as the source timed it (send to acknowledgement).
func BenchmarkMigration256MiB(b *testing.B) {
	var downtimes, blackouts, timeData, totals []float64
	for i := 0; i < b.N; i++ {
		backend, err := sim.New(sim.WithMemory(256<<20), sim.WithDirtyRate(64<<20))
		if err != nil {
			b.Fatal(err)
		}
		vm, err := backend.NewVM(backend.DefaultSpec())
		if err != nil {
			b.Fatal(err)
		}
		if err := vm.Boot(context.Background()); err != nil {
			b.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // the workload dirties memory first
		sc, dc := tcpPair(b)
		id := NewID()
		srcDone := make(chan *Result, 1)
		go func() {
			res, err := RunSource(context.Background(), sc, vm, id, Config{})
			if err != nil {
				b.Error(err)
			}
			srcDone <- res
		}()
		start := time.Now()
		dvm, dres, err := RunDestination(context.Background(), func(context.Context) (net.Conn, error) { return dc, nil }, backend, id, Config{})
		if err != nil {
			b.Fatal(err)
		}
		totals = append(totals, float64(time.Since(start).Milliseconds()))
		sres := <-srcDone
		dvm.Destroy()
		downtimes = append(downtimes, sres.Downtime.Seconds()*1e3)
		blackouts = append(blackouts, dres.Blackout.Seconds()*1e3)
		if p, ok := sres.Phase(schema.PhaseTimeData); ok {
			timeData = append(timeData, float64(p.Duration().Microseconds()))
		}
	}
	b.ReportMetric(median(downtimes), "downtime-ms")
	b.ReportMetric(median(blackouts), "blackout-ms")
	b.ReportMetric(median(timeData), "timedata-µs")
	b.ReportMetric(median(totals), "total-ms")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}
