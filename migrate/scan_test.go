package migrate

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/pagebits"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// copyOnly hides a VM's PageVisitor, so the RAM push reads it the way it
// reads a backend that cannot show pages in place.
type copyOnly struct{ vmm.VM }

// TestReadRun reads runs of a guest whose pages are zero, full, or zero
// but for one byte at either end, in place and by copy: both must find
// the same zero pages and the same data.
func TestReadRun(t *testing.T) {
	const pages = 64
	backend, err := sim.New(sim.WithMemory(pages*vmm.PageSize), sim.WithDirtyRate(0))
	if err != nil {
		t.Fatal(err)
	}
	vm, err := backend.NewVM(backend.DefaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, pages*vmm.PageSize)
	wantZero := make([]bool, pages)
	for p := range pages {
		page := mem[p*vmm.PageSize : (p+1)*vmm.PageSize]
		switch p % 4 {
		case 0:
			wantZero[p] = true
		case 1:
			for i := range page {
				page[i] = byte(p + i)
			}
		case 2:
			page[0] = 1
		case 3:
			page[vmm.PageSize-1] = 1
		}
	}
	if err := vm.WritePages(0, mem); err != nil {
		t.Fatal(err)
	}
	s := &side{cfg: Config{}.withDefaults(), role: schema.RoleSource, clock: vmm.SystemClock(), result: &model.Side{}, ctx: context.Background()}
	for _, tc := range []struct {
		name string
		vm   vmm.VM
	}{{"in place", vm}, {"by copy", copyOnly{vm}}} {
		for _, run := range []struct{ first, count uint64 }{{0, pages}, {5, 1}, {7, 30}, {63, 1}} {
			r := newRAMSender(s, tc.vm)
			if (r.visitor != nil) != (tc.name == "in place") {
				t.Fatalf("%s: visitor %v", tc.name, r.visitor)
			}
			data := r.buf[:run.count*vmm.PageSize]
			if err := r.readRun(run.first, data); err != nil {
				t.Fatalf("%s: readRun(%d, %d pages): %v", tc.name, run.first, run.count, err)
			}
			for i := range run.count {
				p := run.first + i
				if r.isZero[i] != wantZero[p] {
					t.Errorf("%s: run %d+%d: page %d zero = %v, want %v", tc.name, run.first, run.count, p, r.isZero[i], wantZero[p])
				}
				want := mem[p*vmm.PageSize : (p+1)*vmm.PageSize]
				if got := data[i*vmm.PageSize : (i+1)*vmm.PageSize]; !wantZero[p] && !bytes.Equal(got, want) {
					t.Errorf("%s: run %d+%d: page %d read differs from guest memory", tc.name, run.first, run.count, p)
				}
			}
		}
	}
}

// countingConn counts the frames of each type written through it (one
// frame per Write, as wire.Conn writes them).
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	frames map[wire.Type]int
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.frames[wire.Type(b[0])]++
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// TestSendRoundFrames sends a round of scattered pages, short runs, long
// runs and zero pages, as each protocol version sends it: version 1 only
// ever as PageData, version 2 with the short runs in PageList frames, and
// either way the destination ends with the source's memory.
func TestSendRoundFrames(t *testing.T) {
	const pages = 8192
	for _, tc := range []struct {
		version    int64
		wantList   bool
		wantFrames func(map[wire.Type]int) bool
	}{
		{1, false, func(f map[wire.Type]int) bool { return f[wire.TypePageList] == 0 && f[wire.TypePageData] > 1000 }},
		{2, true, func(f map[wire.Type]int) bool {
			return f[wire.TypePageList] > 0 && f[wire.TypePageList] < 20 && f[wire.TypePageData] > 0 && f[wire.TypePageData] < 100
		}},
	} {
		srcVM, dstVM := idleVMPair(t, pages)
		mem := make([]byte, pages*vmm.PageSize)
		for i := range mem {
			mem[i] = byte(i/vmm.PageSize*7 + i)
		}
		set := pagebits.New(pages)
		for p := uint64(0); p < pages; p++ {
			switch {
			case p >= 4000 && p < 4100: // a long run
				set.Set(p)
			case p >= 6000 && p < 6010: // a short run holding zero pages
				set.Set(p)
				if p%2 == 0 {
					clear(mem[p*vmm.PageSize : (p+1)*vmm.PageSize])
				}
			case p%3 == 0: // scattered single pages, every third
				set.Set(p)
			}
		}
		if err := srcVM.WritePages(0, mem); err != nil {
			t.Fatal(err)
		}
		sc, dc := tcpPair(t)
		counted := &countingConn{Conn: sc, frames: map[wire.Type]int{}}
		cfg := Config{}.withDefaults()
		src := &side{cfg: cfg, role: schema.RoleSource, clock: vmm.SystemClock(), result: &model.Side{ProtocolVersion: tc.version}, conn: wire.NewConn(counted), ctx: context.Background()}
		dst := &side{cfg: cfg, role: schema.RoleDestination, clock: vmm.SystemClock(), result: &model.Side{ProtocolVersion: tc.version}, conn: wire.NewConn(dc), ctx: context.Background()}
		sender, receiver := newRAMSender(src, srcVM), newRAMReceiver(dst, dstVM)
		ctx := context.Background()
		errc := make(chan error, 1)
		go func() {
			begin, err := wire.Expect[*wire.RoundBegin](ctx, dst.conn)
			if err == nil {
				_, err = receiver.recvRound(ctx, begin)
			}
			errc <- err
		}()
		st, err := sender.sendRound(ctx, 0, false, set)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		sc.Close()
		dc.Close()
		if st.pages != set.Count() || st.zeroPages != 5 {
			t.Errorf("version %d: round of %d pages, %d zero; want %d, 5", tc.version, st.pages, st.zeroPages, set.Count())
		}
		if !tc.wantFrames(counted.frames) {
			t.Errorf("version %d: frames sent %v", tc.version, counted.frames)
		}
		got := make([]byte, pages*vmm.PageSize)
		if err := dstVM.ReadPages(0, got); err != nil {
			t.Fatal(err)
		}
		for p := uint64(0); p < pages; p++ {
			want := mem[p*vmm.PageSize : (p+1)*vmm.PageSize]
			if !set.Get(p) {
				want = make([]byte, vmm.PageSize) // never sent: still zero
			}
			if !bytes.Equal(got[p*vmm.PageSize:(p+1)*vmm.PageSize], want) {
				t.Fatalf("version %d: destination page %d differs from the source's", tc.version, p)
			}
			if receiver.hashes[p] != pageHash(want) {
				t.Fatalf("version %d: destination hash of page %d differs", tc.version, p)
			}
		}
	}
}

// TestRamPull has the destination pull the pages that never arrived
// (none, some runs, or all of them) and checks it asks for exactly those
// and ends with the source's memory in them.
func TestRamPull(t *testing.T) {
	const pages = 4096
	for _, tc := range []struct {
		name    string
		missing [][2]uint64 // runs of pages that never arrived
	}{
		{"none", nil},
		{"scattered", [][2]uint64{{0, 1}, {63, 2}, {1000, 100}, {4095, 1}}},
		{"all", [][2]uint64{{0, pages}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcVM, dstVM := idleVMPair(t, pages)
			mem := make([]byte, pages*vmm.PageSize)
			for i := range mem {
				mem[i] = byte(i/vmm.PageSize + i)
			}
			if err := srcVM.WritePages(0, mem); err != nil {
				t.Fatal(err)
			}
			sc, dc := tcpPair(t)
			defer sc.Close()
			defer dc.Close()
			cfg := Config{}.withDefaults()
			ctx := context.Background()
			srcSide := &side{cfg: cfg, role: schema.RoleSource, clock: vmm.SystemClock(), result: &model.Side{ProtocolVersion: 2}, conn: wire.NewConn(sc), ctx: ctx}
			dstSide := &side{cfg: cfg, role: schema.RoleDestination, clock: vmm.SystemClock(), result: &model.Side{ProtocolVersion: 2}, conn: wire.NewConn(dc), ctx: ctx}
			src := &source{side: srcSide, vm: srcVM, ram: newRAMSender(srcSide, srcVM)}
			dst := &destination{side: dstSide, vm: dstVM, ram: newRAMReceiver(dstSide, dstVM)}
			dst.ram.received.Fill(pages)
			want := uint64(0)
			for _, r := range tc.missing {
				for p := r[0]; p < r[0]+r[1]; p++ {
					dst.ram.received[p/64] &^= 1 << (p % 64)
				}
				want += r[1]
			}
			errc := make(chan error, 1)
			go func() { errc <- src.ramPull(ctx, &model.PhaseTiming{}) }()
			var rec model.PhaseTiming
			if err := dst.ramPull(ctx, &rec); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if uint64(rec.Pages) != want {
				t.Errorf("pulled %d pages, want %d", rec.Pages, want)
			}
			got := make([]byte, pages*vmm.PageSize)
			if err := dstVM.ReadPages(0, got); err != nil {
				t.Fatal(err)
			}
			for _, r := range tc.missing {
				lo, hi := r[0]*vmm.PageSize, (r[0]+r[1])*vmm.PageSize
				if !bytes.Equal(got[lo:hi], mem[lo:hi]) {
					t.Errorf("pages %d+%d differ from the source's after the pull", r[0], r[1])
				}
			}
			if n := dst.ram.received.Count(); n != pages {
				t.Errorf("%d of %d pages received after the pull", n, pages)
			}
		})
	}
}

// idleVMPair makes two sim VMs of pages pages whose guests never run, a
// source and a destination, destroyed when the test ends.
func idleVMPair(t *testing.T, pages uint64) (src, dst vmm.VM) {
	t.Helper()
	backend, err := sim.New(sim.WithMemory(pages*vmm.PageSize), sim.WithDirtyRate(0))
	if err != nil {
		t.Fatal(err)
	}
	vms := make([]vmm.VM, 2)
	for i := range vms {
		vm, err := backend.NewVM(backend.DefaultSpec())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = vm.Destroy() })
		vms[i] = vm
	}
	return vms[0], vms[1]
}
