package wire_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"testing"

	"github.com/migtrace/migtrace/migrate/wire"
)

// FuzzDecode feeds arbitrary payloads to every decoder. A payload is either
// refused with a classified error or decodes to a message that encodes back
// to exactly the same bytes (the encoding is canonical) and decodes again
// to an equal message.
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		p, err := wire.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(byte(m.Type()), p)
	}
	f.Add(byte(0), []byte{})
	f.Add(byte(wire.TypeZeroPages), []byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, typ byte, payload []byte) {
		m, err := wire.Unmarshal(wire.Type(typ), payload)
		if err != nil {
			if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrUnknownType) && !errors.Is(err, wire.ErrFrameTooLarge) {
				t.Fatalf("unclassified error: %v", err)
			}
			var fe *wire.FrameError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("error does not say where: %v", err)
			}
			return
		}
		again, err := wire.Marshal(m)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", m, err)
		}
		if !bytes.Equal(again, payload) {
			t.Fatalf("%s: re-encoding changed the payload\n got %x\nwant %x", m.Type(), again, payload)
		}
		m2, err := wire.Unmarshal(m.Type(), again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("second decode: %#v, %v; want %#v", m2, err, m)
		}
	})
}

// FuzzRecv feeds an arbitrary byte stream to a Conn: every frame is either
// received or refused with a classified error, and nothing panics.
func FuzzRecv(f *testing.F) {
	var stream []byte
	for _, m := range sampleMessages() {
		stream = append(stream, frame(m)...)
	}
	f.Add(stream)
	f.Add(header(wire.TypePageData, 0, 1<<30))
	f.Add(frame(&wire.Okay{})[:5])
	f.Add([]byte("\x03\x00\x00\x00\x00\x00\x00\x000000")) // an Okay with a wrong checksum
	f.Fuzz(func(t *testing.T, stream []byte) {
		c := wire.NewConn(readerConn(stream), wire.WithMaxPayload(64<<10))
		for range 64 {
			_, err := c.Recv(context.Background())
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return
			}
			// A frame whose checksum does not match is refused before its
			// payload is decoded; FuzzDecode fuzzes the decoders directly.
			if !errors.Is(err, wire.ErrMalformed) && !errors.Is(err, wire.ErrUnknownType) &&
				!errors.Is(err, wire.ErrFrameTooLarge) && !errors.Is(err, wire.ErrChecksum) {
				t.Fatalf("unclassified error: %v", err)
			}
		}
	})
}
