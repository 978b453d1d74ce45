package wire_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/migtrace/migtrace/migrate/wire"
)

// FuzzHandshake plays an arbitrary byte stream as the peer of both ends of
// the version handshake. Each end either agrees on a version it offered
// and the peer's frames allowed, or fails with a classified error; nothing
// panics and nothing is agreed that the stream did not say.
func FuzzHandshake(f *testing.F) {
	f.Add(frame(&wire.Hello{Versions: []uint32{1}}))
	f.Add(frame(&wire.Hello{Versions: []uint32{7, 9}}))
	f.Add(frame(&wire.Hello{}))
	f.Add(frame(&wire.HelloReply{Version: 1}))
	f.Add(frame(&wire.HelloReply{Version: 2}))
	f.Add(frame(&wire.Error{Message: "no"}))
	f.Add(frame(&wire.Okay{}))
	f.Add(header(wire.TypeHello, 0, 1<<30))
	f.Add([]byte{byte(wire.TypeHello), 0, 0, 0, 0, 0, 0, 4, 1, 0, 0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		ctx := context.Background()

		var sent bytes.Buffer
		srv := wire.NewConn(&fakeConn{r: bytes.NewReader(stream), w: &sent}, wire.WithMaxPayload(64<<10))
		v, err := wire.HandshakeServer(ctx, srv, wire.SupportedVersions)
		if err != nil {
			checkHandshakeError(t, "server", err)
		} else {
			if !slices.Contains(wire.SupportedVersions, v) {
				t.Fatalf("server agreed on version %d, which it does not speak", v)
			}
			// What it agreed on is what it told the peer.
			reply, rerr := wire.NewConn(readerConn(sent.Bytes())).Recv(ctx)
			if hr, ok := reply.(*wire.HelloReply); rerr != nil || !ok || hr.Version != v {
				t.Fatalf("server agreed on %d but sent %#v, %v", v, reply, rerr)
			}
		}

		cli := wire.NewConn(readerConn(stream), wire.WithMaxPayload(64<<10))
		v, err = wire.HandshakeClient(ctx, cli, wire.SupportedVersions)
		if err != nil {
			checkHandshakeError(t, "client", err)
		} else if !slices.Contains(wire.SupportedVersions, v) {
			t.Fatalf("client agreed on version %d, which it did not offer", v)
		}
	})
}

func checkHandshakeError(t *testing.T, side string, err error) {
	t.Helper()
	var remote *wire.RemoteError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, wire.ErrMalformed), errors.Is(err, wire.ErrUnknownType),
		errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrUnexpectedMessage),
		errors.Is(err, wire.ErrNoCommonVersion), errors.As(err, &remote):
	default:
		t.Fatalf("%s handshake: unclassified error: %v", side, err)
	}
	if err.Error() == "" {
		t.Fatalf("%s handshake: empty error message", side)
	}
}
