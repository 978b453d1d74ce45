package wire_test

import (
	"bytes"
	"io"
	"log"
	"net"
	"sync/atomic"
	"time"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/schema"
)

// sampleMessages holds one message of every type, with every field set.
func sampleMessages() []wire.Message {
	return []wire.Message{
		&wire.Hello{Versions: []uint32{1, 2, 7}},
		&wire.HelloReply{Version: 2},
		&wire.Okay{},
		&wire.Error{Phase: uint8(schema.PhaseRamPull), Message: "destination: guest memory import failed"},
		&wire.Sync{
			MigrationID: [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8},
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			TraceState:  "vendor=opaque",
			SourceName:  "host-a",
			Spec:        []byte(`{"backend":"sim","memory_bytes":67108864,"vcpus":2}`),
		},
		&wire.ClockProbe{Seq: 3, T1: 1_700_000_000_123_456_789},
		&wire.ClockReply{Seq: 3, T1: 1_700_000_000_123_456_789, T2: 1_700_000_000_128_000_000, T3: 1_700_000_000_128_000_500},
		&wire.RoundBegin{Round: 4, Paused: true, Pages: 65536},
		&wire.PageData{First: 42, Count: 2, Data: pattern(2 * wire.PageSize)},
		&wire.ZeroPages{Runs: []wire.PageRun{{First: 0, Count: 10}, {First: 100, Count: 1}}},
		&wire.RoundEnd{Round: 4, PagesSent: 1000, ZeroPages: 64536},
		&wire.RoundAck{Round: 4, PagesReceived: 65536},
		&wire.PullRequest{Runs: []wire.PageRun{{First: 7, Count: 3}}},
		&wire.PullEnd{},
		&wire.TimeData{Data: timedata.Data{
			GuestFreq:  2_649_958_945,
			GuestTSC:   0xfffffffffff00000,
			Hrtime:     17_148_534_696_948,
			Wallclock:  timedata.Wallclock{Sec: 1_683_850_713, Nsec: 581_965_192},
			BootHrtime: -12_345,
		}},
		&wire.DeviceState{Devices: []vmm.DeviceState{
			{Name: "com1", Kind: "uart", Version: 1, Data: []byte("lsr=0x60")},
			{Name: "hpet0", Kind: "hpet", Version: 2},
		}},
		&wire.ServerState{Name: "host-b", Address: "10.0.0.2:7000", Console: []byte("login: ")},
		&wire.Finish{
			MemoryChecksum: [32]byte{1, 2, 3, 31: 0xff},
			DeviceDigest:   [32]byte{4, 5, 6, 31: 0xee},
			PauseHrtime:    17_148_534_000_000,
			PauseWall:      1_683_850_713_000_000_000,
			HandoffWall:    1_683_850_713_050_000_000,
			Phases: []wire.PhaseTiming{
				{Phase: uint8(schema.PhaseSync), BeginNs: 10, EndNs: 20},
				{Phase: uint8(schema.PhaseRamPushPrePause), BeginNs: 20, EndNs: 90, Bytes: 1 << 26, Pages: 1 << 14},
			},
		},
		&wire.Handoff{},
		&wire.Resumed{},
		&wire.MemoryCheck{Mode: wire.VerifySampled, Samples: []wire.PageHash{{Page: 3, Hash: 0x9e3779b97f4a7c15}, {Page: 60000, Hash: 1}}},
		&wire.MemoryDigest{Checksum: [32]byte{9, 8, 7, 31: 0xdd}, Pages: 65536},
		&wire.PageList{Pages: []uint64{3, 17, 40000}, Data: pattern(3 * wire.PageSize)},
	}
}

// pattern returns n bytes that differ from page to page.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/wire.PageSize)
	}
	return b
}

func frame(m wire.Message) []byte {
	b, err := wire.AppendFrame(nil, m)
	if err != nil {
		panic(err)
	}
	return b
}

// fakeConn is a net.Conn over a reader and a writer, with no-op deadlines.
// It counts the bytes the Conn reads from it.
type fakeConn struct {
	r     io.Reader
	w     io.Writer
	nRead atomic.Int64
}

func (c *fakeConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.nRead.Add(int64(n))
	return n, err
}

func (c *fakeConn) Write(p []byte) (int, error) {
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

func (c *fakeConn) Close() error                     { return nil }
func (c *fakeConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fakeConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fakeConn) SetDeadline(time.Time) error      { return nil }
func (c *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fakeConn) SetWriteDeadline(time.Time) error { return nil }

func readerConn(b []byte) *fakeConn { return &fakeConn{r: bytes.NewReader(b)} }

// replayReader serves the same bytes forever.
type replayReader struct {
	data []byte
	off  int
}

func (r *replayReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// discardLog silences http.Server's log of refused TLS handshakes.
func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
