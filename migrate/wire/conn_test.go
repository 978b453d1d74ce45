package wire_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/migrate/wire/wiretest"
	"github.com/migtrace/migtrace/tracing/schema"
)

// header builds a raw frame header.
// header is a frame header claiming length payload bytes, with the
// checksum of an empty payload: for streams refused before the payload.
func header(t wire.Type, flags byte, length uint32) []byte {
	h := make([]byte, wire.HeaderSize)
	h[0], h[1] = byte(t), flags
	binary.BigEndian.PutUint32(h[4:8], length)
	binary.BigEndian.PutUint32(h[8:12], crc32.Checksum(h[:8], crc32.MakeTable(crc32.Castagnoli)))
	return h
}

// rawFrame is a frame of type t around payload with a correct checksum,
// whatever the payload holds.
func rawFrame(t wire.Type, payload []byte) []byte {
	h := header(t, 0, uint32(len(payload)))
	tab := crc32.MakeTable(crc32.Castagnoli)
	binary.BigEndian.PutUint32(h[8:12], crc32.Update(crc32.Checksum(h[:8], tab), tab, payload))
	return append(h, payload...)
}

func TestOversizedFrameRefusedBeforeRead(t *testing.T) {
	tests := []struct {
		name   string
		opts   []wire.Option
		length uint32
	}{
		{"1 GiB against MaxPayload", nil, 1 << 30},
		{"just over MaxPayload", nil, wire.MaxPayload + 1},
		{"over a lowered limit", []wire.Option{wire.WithMaxPayload(4096)}, 4097},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The stream claims a huge payload and really has one behind
			// the header; a reader that trusted the length would read it.
			stream := append(header(wire.TypePageData, 0, tt.length), make([]byte, 8<<20)...)
			fc := readerConn(stream)
			c := wire.NewConn(fc, tt.opts...)

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := c.Recv(context.Background())
			runtime.ReadMemStats(&after)

			if !errors.Is(err, wire.ErrFrameTooLarge) {
				t.Fatalf("err = %v, want ErrFrameTooLarge", err)
			}
			var fe *wire.FrameError
			if !errors.As(err, &fe) || fe.Type != wire.TypePageData || fe.StreamOffset != 0 || fe.Field != "header" {
				t.Fatalf("err = %#v, want a header FrameError for PageData at stream byte 0", err)
			}
			if n := fc.nRead.Load(); n != wire.HeaderSize {
				t.Fatalf("read %d bytes from the stream, want only the %d-byte header", n, wire.HeaderSize)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
				t.Fatalf("allocated %d bytes while refusing the frame", grew)
			}
			// The stream is out of step now: the refusal sticks.
			if _, again := c.Recv(context.Background()); !errors.Is(again, wire.ErrFrameTooLarge) {
				t.Fatalf("second Recv err = %v, want the same refusal", again)
			}
		})
	}
}

func TestRecvStreamErrors(t *testing.T) {
	okay := frame(&wire.Okay{})
	rb := frame(&wire.RoundBegin{Round: 1, Pages: 2})
	tests := []struct {
		name   string
		stream []byte
		want   []error
	}{
		{"clean EOF", nil, []error{io.EOF}},
		{"cut in header", okay[:3], []error{wire.ErrMalformed, io.ErrUnexpectedEOF}},
		{"cut in payload", rb[:len(rb)-1], []error{wire.ErrMalformed, io.ErrUnexpectedEOF}},
		{"flags set", header(wire.TypeOkay, 1, 0), []error{wire.ErrMalformed}},
		{"reserved set", []byte{byte(wire.TypeOkay), 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, []error{wire.ErrMalformed}},
		{"unknown type", header(99, 0, 0), []error{wire.ErrUnknownType}},
		{"bad payload", rawFrame(wire.TypeRoundBegin, bytes.Repeat([]byte{9}, 13)), []error{wire.ErrMalformed}},
		{"corrupted payload", func() []byte {
			f := frame(&wire.RoundBegin{Round: 1, Pages: 2})
			f[len(f)-1] ^= 0x10
			return f
		}(), []error{wire.ErrChecksum}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wire.NewConn(readerConn(tt.stream)).Recv(context.Background())
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want it to match %v", err, want)
				}
			}
		})
	}
}

func TestMalformedPayloadLeavesConnUsable(t *testing.T) {
	stream := rawFrame(wire.TypeRoundBegin, bytes.Repeat([]byte{9}, 13))
	stream = append(stream, frame(&wire.Okay{})...)
	c := wire.NewConn(readerConn(stream))
	_, err := c.Recv(context.Background())
	var fe *wire.FrameError
	if !errors.As(err, &fe) || fe.Field != "Paused" || fe.Offset != 4 {
		t.Fatalf("err = %v, want a FrameError on Paused at payload byte 4", err)
	}
	if m, err := c.Recv(context.Background()); err != nil || m.Type() != wire.TypeOkay {
		t.Fatalf("next Recv = %v, %v; want Okay", m, err)
	}
}

func TestExpect(t *testing.T) {
	stream := append(frame(&wire.RoundEnd{Round: 1}), frame(&wire.Error{Phase: uint8(schema.PhaseTimeData), Message: "bad frequency"})...)
	stream = append(stream, frame(&wire.RoundAck{Round: 1, PagesReceived: 5})...)
	c := wire.NewConn(readerConn(stream))
	ctx := context.Background()

	_, err := wire.Expect[*wire.RoundAck](ctx, c)
	var ue *wire.UnexpectedMessageError
	if !errors.Is(err, wire.ErrUnexpectedMessage) || !errors.As(err, &ue) ||
		ue.Got != wire.TypeRoundEnd || ue.Want != wire.TypeRoundAck {
		t.Fatalf("err = %v, want unexpected RoundEnd (want RoundAck)", err)
	}

	_, err = wire.Expect[*wire.RoundAck](ctx, c)
	var re *wire.RemoteError
	if !errors.As(err, &re) || re.Phase != schema.PhaseTimeData || re.Message != "bad frequency" {
		t.Fatalf("err = %v, want a RemoteError in TimeData", err)
	}
	if got, want := err.Error(), "peer failed in phase TimeData: bad frequency"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}

	ack, err := wire.Expect[*wire.RoundAck](ctx, c)
	if err != nil || ack.PagesReceived != 5 {
		t.Fatalf("Expect = %+v, %v", ack, err)
	}
}

// watchdog fails the test if f does not return within a generous bound; it
// guards against a missing timeout hanging the suite, not speed.
func watchdog[T any](t *testing.T, f func() T) T {
	t.Helper()
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("operation still blocked after 10s")
		panic("unreachable")
	}
}

func TestRecvIOTimeout(t *testing.T) {
	a, b := wiretest.TCPPair(t)
	_ = a // the peer never answers
	c := wire.NewConn(b, wire.WithIOTimeout(50*time.Millisecond))
	err := watchdog(t, func() error { _, err := c.Recv(context.Background()); return err })
	if !errors.Is(err, wire.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	// Nothing of a frame was read, so the Conn recovers once data comes.
	if err := wire.NewConn(a).Send(context.Background(), &wire.Okay{}); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.Expect[*wire.Okay](context.Background(), c); err != nil {
		t.Fatalf("Recv after timeout: %v", err)
	}
}

func TestRecvTimeoutMidFrameSticks(t *testing.T) {
	a, b := wiretest.TCPPair(t)
	if _, err := a.Write(frame(&wire.RoundAck{})[:5]); err != nil {
		t.Fatal(err)
	}
	c := wire.NewConn(b, wire.WithIOTimeout(50*time.Millisecond))
	err := watchdog(t, func() error { _, err := c.Recv(context.Background()); return err })
	if !errors.Is(err, wire.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if _, again := c.Recv(context.Background()); !errors.Is(again, wire.ErrTimeout) {
		t.Fatalf("second Recv = %v, want the sticky timeout", again)
	}
}

func TestSendIOTimeout(t *testing.T) {
	a, _ := wiretest.TCPPair(t) // the peer never reads
	c := wire.NewConn(a, wire.WithIOTimeout(50*time.Millisecond))
	pd := &wire.PageData{Count: wire.MaxPagesPerFrame, Data: make([]byte, wire.MaxPagesPerFrame*wire.PageSize)}
	err := watchdog(t, func() error {
		for range 1000 { // far beyond any socket buffer
			if err := c.Send(context.Background(), pd); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, wire.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if again := c.Send(context.Background(), &wire.Okay{}); !errors.Is(again, wire.ErrTimeout) {
		t.Fatalf("Send after a cut frame = %v, want the sticky timeout", again)
	}
}

func TestContextDeadlineBeatsIOTimeout(t *testing.T) {
	_, b := wiretest.TCPPair(t)
	c := wire.NewConn(b, wire.WithIOTimeout(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := watchdog(t, func() error { _, err := c.Recv(ctx); return err })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

func TestCancelAbortsBlockedRecv(t *testing.T) {
	a, b := wiretest.TCPPair(t)
	c := wire.NewConn(b, wire.WithIOTimeout(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	err := watchdog(t, func() error { _, err := c.Recv(ctx); return err })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	// The cancelled context's past deadline must not leak into the next
	// operation under a fresh context.
	if err := wire.NewConn(a).Send(context.Background(), &wire.RoundAck{Round: 9}); err != nil {
		t.Fatal(err)
	}
	ack, err := wire.Expect[*wire.RoundAck](context.Background(), c)
	if err != nil || ack.Round != 9 {
		t.Fatalf("Recv after cancel = %+v, %v", ack, err)
	}
	// A context cancelled before the call fails fast and reads nothing.
	if _, err := c.Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv with a cancelled ctx = %v", err)
	}
}

func TestCloseAbortsBlockedRecv(t *testing.T) {
	_, b := wiretest.TCPPair(t)
	c := wire.NewConn(b, wire.WithIOTimeout(time.Hour))
	time.AfterFunc(20*time.Millisecond, func() { c.Close() })
	err := watchdog(t, func() error { _, err := c.Recv(t.Context()); return err })
	if !errors.Is(err, wire.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Both directions at once, with page data, under -race.
func TestFullDuplex(t *testing.T) {
	a, b := wiretest.TCPPair(t)
	src, dst := wire.NewConn(a), wire.NewConn(b)
	ctx := t.Context()
	const rounds = 50
	data := pattern(64 * wire.PageSize)
	errc := make(chan error, 2)
	go func() { // source: pages out
		pd := &wire.PageData{Count: 64, Data: data}
		for i := range rounds {
			pd.First = uint64(i) * 64
			if err := src.Send(ctx, pd); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	go func() { // source: acks in
		for i := range rounds {
			ack, err := wire.Expect[*wire.RoundAck](ctx, src)
			if err != nil {
				errc <- err
				return
			}
			if ack.Round != uint32(i) {
				errc <- errors.New("acks out of order")
				return
			}
		}
		errc <- nil
	}()
	for i := range rounds {
		pd, err := wire.Expect[*wire.PageData](ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		if pd.First != uint64(i)*64 || !bytes.Equal(pd.Data, data) {
			t.Fatalf("frame %d: wrong pages", i)
		}
		if err := dst.Send(ctx, &wire.RoundAck{Round: uint32(i), PagesReceived: 64}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// Page traffic in steady state allocates nothing per frame, with a
// cancellable context too.
func TestPageFramesDoNotAllocate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pd := &wire.PageData{First: 7, Count: 256, Data: pattern(256 * wire.PageSize)}
	stream := append(frame(pd), frame(&wire.ZeroPages{Runs: []wire.PageRun{{First: 1, Count: 2}, {First: 9, Count: 1}}})...)
	rc := wire.NewConn(&fakeConn{r: &replayReader{data: stream}})
	recvAllocs := testing.AllocsPerRun(200, func() {
		if _, err := rc.Recv(ctx); err != nil {
			t.Fatal(err)
		}
	})
	sc := wire.NewConn(&fakeConn{r: bytes.NewReader(nil)})
	inPlace := wire.NewPageData(256)
	sendAllocs := testing.AllocsPerRun(200, func() {
		if err := sc.Send(ctx, pd); err != nil { // copied into the Conn's buffer
			t.Fatal(err)
		}
		if err := sc.Send(ctx, inPlace); err != nil {
			t.Fatal(err)
		}
	})
	if recvAllocs != 0 || sendAllocs != 0 {
		t.Fatalf("allocs per frame: Recv %v, Send %v; want 0", recvAllocs, sendAllocs)
	}
}

func TestRecvReusesPageBuffer(t *testing.T) {
	stream := append(frame(&wire.PageData{First: 1, Count: 1, Data: bytes.Repeat([]byte{1}, wire.PageSize)}),
		frame(&wire.PageData{First: 2, Count: 1, Data: bytes.Repeat([]byte{2}, wire.PageSize)})...)
	c := wire.NewConn(readerConn(stream))
	first, _ := wire.Expect[*wire.PageData](context.Background(), c)
	firstData := first.Data
	second, _ := wire.Expect[*wire.PageData](context.Background(), c)
	// Documented aliasing: the earlier message now shows the later frame.
	if first != second || &firstData[0] != &second.Data[0] || second.First != 2 {
		t.Fatal("PageData is not reused across Recv calls")
	}
}

func TestMaxBandwidthCapsSend(t *testing.T) {
	const rate = 8 << 20
	c := wire.NewConn(&fakeConn{r: bytes.NewReader(nil)}, wire.WithMaxBandwidth(rate))
	pd := &wire.PageData{Count: 32, Data: make([]byte, 32*wire.PageSize)}
	start := time.Now()
	for range 32 {
		if err := c.Send(context.Background(), pd); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	// Only a lower bound: the bucket admits 50 ms of traffic up front, and
	// the rest cannot go faster than the cap. (The limiter's exact rate is
	// checked against a fake clock in limiter_test.go.)
	sent := float64(c.BytesSent())
	floor := time.Duration((sent - 0.05*rate) / rate * float64(time.Second))
	if elapsed < floor {
		t.Fatalf("sent %.0f bytes in %v at a cap of %d B/s; cannot be faster than %v", sent, elapsed, rate, floor)
	}
}

// Once the cap is lifted, Send no longer waits for bandwidth: frames the
// cap would hold back for minutes go out within a short deadline.
func TestLiftBandwidthCap(t *testing.T) {
	const rate = 4 << 10 // the 64 KiB burst, then 4 KiB/s
	c := wire.NewConn(&fakeConn{r: bytes.NewReader(nil)}, wire.WithMaxBandwidth(rate))
	pd := &wire.PageData{Count: 32, Data: make([]byte, 32*wire.PageSize)} // 128 KiB
	send := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return c.Send(ctx, pd)
	}
	if err := send(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("capped: err %v, want the frame held back past the deadline", err)
	}
	c.LiftBandwidthCap()
	for i := range 32 {
		if err := send(); err != nil {
			t.Fatalf("frame %d after lifting the cap: %v", i, err)
		}
	}
}

func TestNewPageDataSendsInPlace(t *testing.T) {
	var out bytes.Buffer
	c := wire.NewConn(&fakeConn{r: bytes.NewReader(nil), w: &out})
	pd := wire.NewPageData(8)
	if pd.Count != 8 || len(pd.Data) != 8*wire.PageSize {
		t.Fatalf("NewPageData(8) = %d pages, %d bytes", pd.Count, len(pd.Data))
	}
	copy(pd.Data, pattern(8*wire.PageSize))
	buf := pd.Data
	sends := []struct {
		first uint64
		data  []byte
	}{
		{10, buf},                   // all 8 pages
		{20, buf[:3*wire.PageSize]}, // a run at the start
		{30, buf[5*wire.PageSize : 7*wire.PageSize]},                   // a run in the middle
		{40, buf[7*wire.PageSize:]},                                    // the last page
		{50, pattern(wire.PageSize)},                                   // elsewhere: copied
		{60, buf[2*wire.PageSize : 3*wire.PageSize : 3*wire.PageSize]}, // capped: copied
	}
	var want []byte
	var frames [][]byte
	for _, s := range sends {
		pd.First, pd.Count, pd.Data = s.first, uint32(len(s.data)/wire.PageSize), s.data
		// Expected bytes first: an in-place Send overwrites the bytes in
		// front of the run.
		frames = append(frames, frame(&wire.PageData{First: pd.First, Count: pd.Count, Data: pd.Data}))
		want = append(want, frames[len(frames)-1]...)
		if err := c.Send(context.Background(), pd); err != nil {
			t.Fatal(err)
		}
	}
	// The middle run was framed in place: its head sits in front of it.
	// (Its checksum covers the pages as sent; the next run's head has
	// since overwritten the end of them.)
	mid := frames[2]
	const head = wire.HeaderSize + 12 // frame header and PageData's fixed fields
	if !bytes.Equal(buf[5*wire.PageSize-head:5*wire.PageSize], mid[:head]) {
		t.Error("a run inside the buffer was not framed in place")
	}
	// The capped run was copied: the bytes in front of it are untouched.
	if !bytes.Equal(buf[2*wire.PageSize-head:2*wire.PageSize], pattern(8 * wire.PageSize)[2*wire.PageSize-head:2*wire.PageSize]) {
		t.Error("a capped run was framed in place, over bytes it does not own")
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("frames sent from NewPageData differ from their encoding")
	}
	bad := wire.NewPageData(2)
	bad.Count = 3
	if err := c.Send(context.Background(), bad); !errors.Is(err, wire.ErrInvalidMessage) {
		t.Fatalf("Count beyond Data: err = %v, want ErrInvalidMessage", err)
	}
}

// A PageList from NewPageList goes out as its encoding, whatever number
// of its pages is used, and comes back as sent.
func TestNewPageListSendsInPlace(t *testing.T) {
	var out bytes.Buffer
	c := wire.NewConn(&fakeConn{r: bytes.NewReader(nil), w: &out})
	pl := wire.NewPageList(8)
	if len(pl.Data) != 8*wire.PageSize || cap(pl.Pages) != 8 || len(pl.Pages) != 0 {
		t.Fatalf("NewPageList(8): %d bytes of data, %d/%d pages", len(pl.Data), len(pl.Pages), cap(pl.Pages))
	}
	var want []byte
	for _, pages := range [][]uint64{{1, 5, 9, 100, 101, 102, 500, 501}, {7}, {3, 4000}} {
		// Refilled each time: a Send writes the page numbers over the
		// pages past the list's.
		copy(pl.Data, pattern(8*wire.PageSize))
		pl.Pages = append(pl.Pages[:0], pages...)
		want = append(want, frame(&wire.PageList{Pages: pages, Data: pl.Data[:len(pages)*wire.PageSize]})...)
		if err := c.Send(context.Background(), pl); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("frames sent from NewPageList differ from their encoding")
	}
	r := wire.NewConn(readerConn(out.Bytes()))
	for _, pages := range [][]uint64{{1, 5, 9, 100, 101, 102, 500, 501}, {7}, {3, 4000}} {
		got, err := wire.Expect[*wire.PageList](context.Background(), r)
		if err != nil || !slices.Equal(got.Pages, pages) || !bytes.Equal(got.Data, pattern(8 * wire.PageSize)[:len(pages)*wire.PageSize]) {
			t.Fatalf("received pages %v (%v); want pages %v and their data", got.Pages, err, pages)
		}
	}
	for _, bad := range [][]uint64{nil, {5, 5}, {9, 1}, make([]uint64, 9)} {
		pl.Pages = bad
		if err := c.Send(context.Background(), pl); !errors.Is(err, wire.ErrInvalidMessage) {
			t.Errorf("pages %v: err = %v, want ErrInvalidMessage", bad, err)
		}
	}
}
