package wire_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/migrate/wire/wiretest"
)

func TestSamplesCoverEveryType(t *testing.T) {
	seen := map[wire.Type]bool{}
	for _, m := range sampleMessages() {
		seen[m.Type()] = true
	}
	for ty := wire.Type(0); ty < 255; ty++ {
		if ty.Valid() != seen[ty] {
			t.Errorf("type %v: valid=%v but sampled=%v", ty, ty.Valid(), seen[ty])
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		t.Run(m.Type().String(), func(t *testing.T) {
			payload, err := wire.Marshal(m)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, err := wire.Unmarshal(m.Type(), payload)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
			}
		})
	}
}

func TestConnRoundTrip(t *testing.T) {
	a, b := wiretest.TCPPair(t)
	src, dst := wire.NewConn(a), wire.NewConn(b)
	ctx := t.Context()
	msgs := sampleMessages()
	errc := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := src.Send(ctx, m); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for _, want := range msgs {
		got, err := dst.Recv(ctx)
		if err != nil {
			t.Fatalf("Recv %s: %v", want.Type(), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Recv:\n got %#v\nwant %#v", got, want)
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("Send: %v", err)
	}
	var total uint64
	for _, m := range msgs {
		total += uint64(len(frame(m)))
	}
	if src.BytesSent() != total || dst.BytesReceived() != total {
		t.Errorf("byte counters: sent %d, received %d, want %d", src.BytesSent(), dst.BytesReceived(), total)
	}
}

// The layouts below are the ones docs/protocol.md documents.
func TestEncodingLayout(t *testing.T) {
	tests := []struct {
		name string
		msg  wire.Message
		hex  string
	}{
		{"okay", &wire.Okay{}, "0300000000000000"},
		{"hello", &wire.Hello{Versions: []uint32{1, 2}}, "010000000000000c" + "02000000" + "01000000" + "02000000"},
		{"clock probe", &wire.ClockProbe{Seq: 1, T1: 0x0102030405060708}, "060000000000000c" + "01000000" + "0807060504030201"},
		{"round begin", &wire.RoundBegin{Round: 2, Paused: true, Pages: 3}, "080000000000000d" + "02000000" + "01" + "0300000000000000"},
		{"error", &wire.Error{Phase: 5, Message: "no"}, "0400000000000007" + "05" + "02000000" + "6e6f"},
		{"zero pages", &wire.ZeroPages{Runs: []wire.PageRun{{First: 9, Count: 4}}}, "0a00000000000010" + "01000000" + "0900000000000000" + "04000000"},
		{"memory check", &wire.MemoryCheck{Mode: wire.VerifySampled, Samples: []wire.PageHash{{Page: 2, Hash: 0x0102030405060708}}},
			"1500000000000015" + "02" + "01000000" + "0200000000000000" + "0807060504030201"},
	}
	// Each hex string is the header's first 8 bytes then the payload; the
	// CRC-32C over both sits between them on the wire.
	withChecksum := func(head8AndPayload string) string {
		b, _ := hex.DecodeString(head8AndPayload)
		sum := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
		return head8AndPayload[:16] + fmt.Sprintf("%08x", sum) + head8AndPayload[16:]
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := hex.EncodeToString(frame(tt.msg)), withChecksum(tt.hex); got != want {
				t.Errorf("frame = %s, want %s", got, want)
			}
		})
	}
	pd := frame(&wire.PageData{First: 1, Count: 1, Data: make([]byte, wire.PageSize)})
	if got, want := hex.EncodeToString(pd[:8])+hex.EncodeToString(pd[12:24]), "090000000000100c"+"0100000000000000"+"01000000"; got != want {
		t.Errorf("PageData head = %s, want %s", got, want)
	}
}

func TestUnmarshalErrors(t *testing.T) {
	le32 := func(v uint32) string {
		return hex.EncodeToString([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)})
	}
	tests := []struct {
		name    string
		typ     wire.Type
		payload string // hex
		want    error
		field   string
	}{
		{"unknown type 0", 0, "", wire.ErrUnknownType, "header"},
		{"unknown type 200", 200, "00", wire.ErrUnknownType, "header"},
		{"okay with payload", wire.TypeOkay, "00", wire.ErrMalformed, "payload"},
		{"hello short", wire.TypeHello, "020000000100", wire.ErrMalformed, "Versions"},
		{"hello too many", wire.TypeHello, le32(65), wire.ErrMalformed, "Versions"},
		{"hello huge count", wire.TypeHello, le32(math.MaxUint32), wire.ErrMalformed, "Versions"},
		{"bool not 0/1", wire.TypeRoundBegin, "00000000" + "02" + "0000000000000000", wire.ErrMalformed, "Paused"},
		{"page count 0", wire.TypePageData, "0000000000000000" + "00000000", wire.ErrMalformed, "Count"},
		{"page count over max", wire.TypePageData, "0000000000000000" + le32(wire.MaxPagesPerFrame+1), wire.ErrMalformed, "Count"},
		{"page data short", wire.TypePageData, "0000000000000000" + "01000000" + "00", wire.ErrMalformed, "Data"},
		{"page run overflows", wire.TypePageData, "ffffffffffffffff" + "01000000", wire.ErrMalformed, "First"},
		{"zero run of 0", wire.TypeZeroPages, "01000000" + "0000000000000000" + "00000000", wire.ErrMalformed, "Runs[0].Count"},
		{"runs claim more than sent", wire.TypeZeroPages, le32(1 << 20), wire.ErrMalformed, "Runs"},
		{"error message too long", wire.TypeError, "01" + le32(wire.MaxErrorMessage+1), wire.ErrMalformed, "Message"},
		{"string longer than payload", wire.TypeServerState, "10000000" + "6869", wire.ErrMalformed, "Name"},
		{"wall nsec 1e9", wire.TypeTimeData, strings.Repeat("00", 32) + le32(1_000_000_000) + strings.Repeat("00", 8), wire.ErrMalformed, "Wallclock.Nsec"},
		{"device name short", wire.TypeDeviceState, le32(1) + le32(20) + strings.Repeat("00", 12), wire.ErrMalformed, "Devices[0].Name"},
		{"finish short", wire.TypeFinish, strings.Repeat("00", 40), wire.ErrMalformed, "DeviceDigest"},
		{"verify mode 0", wire.TypeMemoryCheck, "00" + le32(0), wire.ErrMalformed, "Mode"},
		{"verify mode 5", wire.TypeMemoryCheck, "05" + le32(0), wire.ErrMalformed, "Mode"},
		{"samples claim more than sent", wire.TypeMemoryCheck, "02" + le32(2) + strings.Repeat("00", 16), wire.ErrMalformed, "Samples"},
		{"samples over max", wire.TypeMemoryCheck, "02" + le32(wire.MaxMemorySamples+1), wire.ErrMalformed, "Samples"},
		{"digest short", wire.TypeMemoryDigest, strings.Repeat("00", 36), wire.ErrMalformed, "Pages"},
		{"page list of 0", wire.TypePageList, le32(0), wire.ErrMalformed, "Count"},
		{"page list over max", wire.TypePageList, le32(wire.MaxListPages + 1), wire.ErrMalformed, "Count"},
		{"page list short", wire.TypePageList, le32(1) + strings.Repeat("00", wire.PageSize), wire.ErrMalformed, "Data"},
		{"page list out of order", wire.TypePageList, le32(2) + strings.Repeat("00", 2*wire.PageSize) +
			"0500000000000000" + "0500000000000000", wire.ErrMalformed, "Pages[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			payload, err := hex.DecodeString(tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			_, err = wire.Unmarshal(tt.typ, payload)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var fe *wire.FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("err %T is not a *FrameError", err)
			}
			if fe.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", fe.Field, tt.field, err)
			}
		})
	}
}

// Every proper prefix and every one-byte extension of a valid payload is
// refused as malformed, never accepted and never a panic.
func TestUnmarshalTruncatedAndExtended(t *testing.T) {
	for _, m := range sampleMessages() {
		payload, err := wire.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(payload) {
			if _, err := wire.Unmarshal(m.Type(), payload[:n]); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("%s cut to %d of %d bytes: err = %v, want ErrMalformed", m.Type(), n, len(payload), err)
			}
		}
		if _, err := wire.Unmarshal(m.Type(), append(payload, 0)); !errors.Is(err, wire.ErrMalformed) {
			t.Fatalf("%s with a trailing byte: err = %v, want ErrMalformed", m.Type(), err)
		}
	}
}

func TestSendRefusesInvalidMessages(t *testing.T) {
	tests := []struct {
		name string
		msg  wire.Message
		want error
	}{
		{"page data length", &wire.PageData{First: 1, Count: 2, Data: make([]byte, wire.PageSize)}, wire.ErrInvalidMessage},
		{"page count 0", &wire.PageData{First: 1}, wire.ErrInvalidMessage},
		{"page count over max", &wire.PageData{Count: wire.MaxPagesPerFrame + 1, Data: make([]byte, (wire.MaxPagesPerFrame+1)*wire.PageSize)}, wire.ErrInvalidMessage},
		{"error too long", &wire.Error{Message: strings.Repeat("x", wire.MaxErrorMessage+1)}, wire.ErrInvalidMessage},
		{"too many versions", &wire.Hello{Versions: make([]uint32, wire.MaxVersions+1)}, wire.ErrInvalidMessage},
		{"zero run of 0", &wire.ZeroPages{Runs: []wire.PageRun{{First: 3}}}, wire.ErrInvalidMessage},
		{"spec too long", &wire.Sync{Spec: make([]byte, wire.MaxSpecLen+1)}, wire.ErrInvalidMessage},
		{"device state too large", &wire.DeviceState{Devices: []vmm.DeviceState{{Name: "big", Data: make([]byte, wire.MaxPayload)}}}, wire.ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := wire.NewConn(&fakeConn{r: bytes.NewReader(nil), w: &out})
			err := c.Send(context.Background(), tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send err = %v, want %v", err, tt.want)
			}
			if out.Len() != 0 || c.BytesSent() != 0 {
				t.Fatalf("refused message wrote %d bytes", out.Len())
			}
			// The Conn is still usable.
			if err := c.Send(context.Background(), &wire.Okay{}); err != nil {
				t.Fatalf("Send after refusal: %v", err)
			}
		})
	}
}

func TestSendErrorTruncates(t *testing.T) {
	var out bytes.Buffer
	c := wire.NewConn(&fakeConn{r: bytes.NewReader(nil), w: &out})
	long := errors.New(strings.Repeat("é", wire.MaxErrorMessage)) // 2 bytes per rune
	if err := c.SendError(context.Background(), 4, long); err != nil {
		t.Fatalf("SendError: %v", err)
	}
	m, err := wire.NewConn(readerConn(out.Bytes())).Recv(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e := m.(*wire.Error)
	if e.Phase != 4 || len(e.Message) != wire.MaxErrorMessage || !strings.HasPrefix(long.Error(), e.Message) {
		t.Fatalf("got phase %d, %d-byte message", e.Phase, len(e.Message))
	}
}
