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

// guestSink is a page sink over an 8-page guest memory that declines runs
// starting at a multiple of decline (never when decline is 0) and counts
// the runs it was asked for.
type guestSink struct {
	mem     []byte
	decline uint64
	asked   int
}

func newGuestSink(decline uint64) *guestSink {
	return &guestSink{mem: make([]byte, 8*wire.PageSize), decline: decline}
}

func (g *guestSink) sink(first uint64, count uint32) []byte {
	g.asked++
	end := first + uint64(count)
	if end > 8 || (g.decline != 0 && first%g.decline == 0) {
		return nil
	}
	return g.mem[first*wire.PageSize : end*wire.PageSize]
}

func TestPageSink(t *testing.T) {
	pages := pattern(3 * wire.PageSize)
	good := frame(&wire.PageData{First: 2, Count: 3, Data: pages})
	tests := []struct {
		name      string
		stream    []byte
		decline   uint64
		wantErr   []error
		wantAsked int
		inSink    bool // the pages land in the sink's memory
	}{
		{"taken", good, 0, nil, 1, true},
		{"declined", good, 2, nil, 1, false},
		{"outside guest memory", frame(&wire.PageData{First: 7, Count: 3, Data: pages}), 0, nil, 1, false},
		{"checksum wrong: never asked", func() []byte {
			f := bytes.Clone(good)
			f[wire.HeaderSize] ^= 1 // First, which the checksum covers
			return f
		}(), 0, []error{wire.ErrChecksum}, 0, false},
		{"count 0: never asked", rawFrame(wire.TypePageData, make([]byte, 12)), 0, []error{wire.ErrMalformed}, 0, false},
		{"cut in the pages", good[:len(good)-100], 0, []error{wire.ErrMalformed, io.ErrUnexpectedEOF}, 1, false},
		{"cut in First", good[:wire.HeaderSize+5], 0, []error{wire.ErrMalformed, io.ErrUnexpectedEOF}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuestSink(tt.decline)
			c := wire.NewConn(readerConn(tt.stream))
			c.SetPageSink(g.sink)
			m, err := c.Recv(context.Background())
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want it to match %v", err, want)
				}
			}
			if g.asked != tt.wantAsked {
				t.Errorf("sink asked %d times, want %d", g.asked, tt.wantAsked)
			}
			if tt.wantErr != nil {
				return
			}
			pd, ok := m.(*wire.PageData)
			if err != nil || !ok || !bytes.Equal(pd.Data, pages) {
				t.Fatalf("Recv = %v, %v; want the pages", m, err)
			}
			inSink := &pd.Data[0] == &g.mem[2*wire.PageSize]
			if inSink != tt.inSink {
				t.Errorf("pages in the sink's memory: %v, want %v", inSink, tt.inSink)
			}
			if tt.inSink && !bytes.Equal(g.mem[2*wire.PageSize:5*wire.PageSize], pages) {
				t.Error("the sink's memory does not hold the pages")
			}
		})
	}
}

// FuzzRecvPageSink: a Conn with a page sink receives any stream exactly as
// one without: the same messages with the same pages, and the same
// errors, in the same order, whether the sink takes a run or declines it.
func FuzzRecvPageSink(f *testing.F) {
	var stream []byte
	for _, m := range sampleMessages() {
		stream = append(stream, frame(m)...)
	}
	f.Add(stream, uint8(0))
	f.Add(stream, uint8(2))
	f.Add(frame(&wire.PageData{First: 1, Count: 2, Data: pattern(2 * wire.PageSize)}), uint8(0))
	f.Add(frame(&wire.PageData{First: 6, Count: 3, Data: pattern(3 * wire.PageSize)})[:200], uint8(0))
	f.Fuzz(func(t *testing.T, stream []byte, decline uint8) {
		ctx := context.Background()
		plain := wire.NewConn(readerConn(stream), wire.WithMaxPayload(64<<10))
		sunk := wire.NewConn(readerConn(stream), wire.WithMaxPayload(64<<10))
		sunk.SetPageSink(newGuestSink(uint64(decline)).sink)
		for range 64 {
			m1, e1 := plain.Recv(ctx)
			m2, e2 := sunk.Recv(ctx)
			if (e1 == nil) != (e2 == nil) || (e1 != nil && e1.Error() != e2.Error()) {
				t.Fatalf("without a sink: %v; with one: %v", e1, e2)
			}
			if !reflect.DeepEqual(m1, m2) {
				t.Fatalf("without a sink: %#v\nwith one: %#v", m1, m2)
			}
			if plain.BytesReceived() != sunk.BytesReceived() {
				t.Fatalf("bytes received: %d without a sink, %d with", plain.BytesReceived(), sunk.BytesReceived())
			}
			if errors.Is(e1, io.EOF) {
				return
			}
		}
	})
}
