package migrate

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/pagebits"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/model"
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
// same bytes over a raw loopback TCP connection twice: into a 64 MiB
// buffer, as the push lands them in guest memory (push/raw), and into
// io.Discard, whose 8 KiB buffer never leaves the cache (push/raw-discard):
// the ratios are the protocol's share of what the loopback can carry.
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
	src := &side{cfg: Config{}.withDefaults(), role: schema.RoleSource, clock: vmm.SystemClock(), result: &model.Side{}, conn: wire.NewConn(sc)}
	dst := &side{cfg: Config{}.withDefaults(), role: schema.RoleDestination, clock: vmm.SystemClock(), result: &model.Side{}, conn: wire.NewConn(dc)}
	sender, receiver := newRAMSender(src, srcVM), newRAMReceiver(dst, dstVM)
	all := pagebits.New(sender.pages)
	all.Fill(sender.pages)

	rawA, rawB := tcpPair(b)
	defer rawA.Close()
	defer rawB.Close()
	ctx := context.Background()
	var pushTime, rawTime, discardTime time.Duration
	received := make([]byte, memBytes)
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

		// The two raw copies take turns going first.
		for k := range 2 {
			discard := (i+k)%2 == 0
			start = time.Now()
			go func() {
				var err error
				if discard {
					_, err = io.CopyN(io.Discard, rawB, memBytes)
				} else {
					_, err = io.ReadFull(rawB, received)
				}
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
			if discard {
				discardTime += time.Since(start)
			} else {
				rawTime += time.Since(start)
			}
		}
	}
	b.StopTimer()
	mb := float64(memBytes) * float64(b.N) / (1 << 20)
	b.ReportMetric(mb/pushTime.Seconds(), "push-MiB/s")
	b.ReportMetric(mb/rawTime.Seconds(), "raw-MiB/s")
	b.ReportMetric(rawTime.Seconds()/pushTime.Seconds(), "push/raw")
	b.ReportMetric(mb/discardTime.Seconds(), "raw-discard-MiB/s")
	b.ReportMetric(discardTime.Seconds()/pushTime.Seconds(), "push/raw-discard")
}

// BenchmarkMigration256MiB migrates a 256 MiB guest dirtying 64 MiB/s,
// end to end over loopback, and reports the medians of the source's
// downtime (pause to handoff), the blackout across both sides and the
// TimeData phase as the source timed it (send to acknowledgement): with
// each memory verification, sampled being the default.
func BenchmarkMigration256MiB(b *testing.B) {
	for _, v := range []VerifyMemory{VerifyFull, VerifySampled, VerifyAfter, VerifyOff} {
		b.Run(string(v), func(b *testing.B) { benchMigration(b, Config{VerifyMemory: v}) })
	}
}

func benchMigration(b *testing.B, cfg Config) {
	var downtimes, blackouts, timeData, totals []float64
	for i := 0; i < b.N; i++ {
		// The workload dirties memory for a while before the migration.
		sres, dres, total := migrateOnce(b, 256<<20, 64<<20, 200*time.Millisecond, cfg)
		totals = append(totals, float64(total.Milliseconds()))
		downtimes = append(downtimes, float64(sres.DowntimeNs)/1e6)
		blackouts = append(blackouts, float64(dres.Blackout.Ns)/1e6)
		if p, ok := sres.Phase(schema.PhaseTimeData); ok {
			timeData = append(timeData, float64(p.Duration().Microseconds()))
		}
	}
	b.ReportMetric(median(downtimes), "downtime-ms")
	b.ReportMetric(median(blackouts), "blackout-ms")
	b.ReportMetric(median(timeData), "timedata-µs")
	b.ReportMetric(median(totals), "total-ms")
}

// migrateOnce boots a sim guest of memBytes dirtying dirtyRate bytes/s,
// lets it run for warmup, migrates it over loopback with cfg on both sides
// and returns both sides' results and the migration's wall time.
func migrateOnce(b *testing.B, memBytes uint64, dirtyRate int64, warmup time.Duration, cfg Config) (*model.Side, *model.Side, time.Duration) {
	b.Helper()
	backend, err := sim.New(sim.WithMemory(memBytes), sim.WithDirtyRate(dirtyRate))
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
	time.Sleep(warmup)
	sc, dc := tcpPair(b)
	id := NewID()
	type outcome struct {
		res *model.Side
		err error
	}
	srcDone := make(chan outcome, 1)
	start := time.Now()
	go func() {
		res, err := RunSource(context.Background(), sc, vm, id, cfg)
		srcDone <- outcome{res, err}
	}()
	dvm, dres, err := RunDestination(context.Background(), func(context.Context) (net.Conn, error) { return dc, nil }, backend, id, cfg)
	if err != nil {
		b.Fatal(err)
	}
	total := time.Since(start)
	src := <-srcDone
	if src.err != nil {
		b.Fatal(src.err)
	}
	_ = dvm.Destroy()
	return src.res, dres, total
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// BenchmarkScanHashes hashes a paused 256 MiB guest the way the source does
// at pause, against a plain xxhash64 of a buffer of the same size in the
// same run.
func BenchmarkScanHashes(b *testing.B) {
	const memBytes = 256 << 20
	backend, err := sim.New(sim.WithMemory(memBytes), sim.WithDirtyRate(0))
	if err != nil {
		b.Fatal(err)
	}
	vm, err := backend.NewVM(backend.DefaultSpec())
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, memBytes)
	if _, err := rand.Read(data); err != nil {
		b.Fatal(err)
	}
	if err := vm.WritePages(0, data); err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(memBytes)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := scanHashes(vm, workers); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("baseline-xxhash", func(b *testing.B) {
		b.SetBytes(memBytes)
		for b.Loop() {
			var h pageHashes = make(pageHashes, memBytes/vmm.PageSize)
			h.update(0, data)
		}
	})
}

// BenchmarkTimeDataPhase runs the TimeData exchange alone between two sim
// VMs over loopback: the source reads and sends its time data, the
// destination adjusts it, writes it to its VMM, records the three stages
// and acknowledges. The baseline is a bare Okay round trip on the same
// connection in the same run: the phase's cost beyond the network.
func BenchmarkTimeDataPhase(b *testing.B) {
	backend, err := sim.New(sim.WithMemory(4<<20), sim.WithDirtyRate(0))
	if err != nil {
		b.Fatal(err)
	}
	srcVM, _ := backend.NewVM(backend.DefaultSpec())
	dstVM, _ := backend.NewVM(backend.DefaultSpec())
	if err := srcVM.Boot(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := srcVM.Pause(context.Background()); err != nil {
		b.Fatal(err)
	}
	sc, dc := tcpPair(b)
	defer sc.Close()
	defer dc.Close()
	cfg := Config{}.withDefaults()
	src := &source{side: &side{cfg: cfg, role: schema.RoleSource, clock: vmm.SystemClock(), result: &model.Side{}, conn: wire.NewConn(sc), ctx: context.Background()}, vm: srcVM}
	dst := &destination{side: &side{cfg: cfg, role: schema.RoleDestination, clock: vmm.SystemClock(), result: &model.Side{}, conn: wire.NewConn(dc), ctx: context.Background()}, vm: dstVM}
	ctx := context.Background()
	rec := &model.PhaseTiming{}

	b.Run("okay-roundtrip", func(b *testing.B) {
		errc := make(chan error, 1)
		go func() {
			for {
				if _, err := wire.Expect[*wire.Okay](ctx, dst.conn); err != nil {
					errc <- err
					return
				}
				if err := dst.conn.Send(ctx, &wire.Okay{}); err != nil {
					errc <- err
					return
				}
			}
		}()
		for b.Loop() {
			if err := src.conn.Send(ctx, &wire.Okay{}); err != nil {
				b.Fatal(err)
			}
			if _, err := wire.Expect[*wire.Okay](ctx, src.conn); err != nil {
				b.Fatal(err)
			}
		}
		// Stop the echo: a TimeData it does not expect ends its loop.
		if err := src.conn.Send(ctx, &wire.Handoff{}); err != nil {
			b.Fatal(err)
		}
		<-errc
	})
	b.Run("timedata", func(b *testing.B) {
		b.ReportAllocs()
		errc := make(chan error, 1)
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				if err := dst.timeData(ctx, rec); err != nil {
					errc <- err
					return
				}
			}
		}()
		for b.Loop() {
			if err := src.timeData(ctx, rec); err != nil {
				b.Fatal(err)
			}
		}
		close(stop)
		// Let the destination loop see stop: one more exchange.
		if err := src.timeData(ctx, rec); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	})
}
