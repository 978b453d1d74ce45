package wire_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/migtrace/migtrace/migrate/wire"
)

// FuzzHandshake plays a peer to both ends of the version handshake. The
// peer either sends well-formed frames built from the input (framed, so
// they pass the frame checks and reach the negotiation: the input's bytes
// become the offered versions and the chosen one) or the input itself as a
// raw byte stream. Each end either agrees on a version it offered and the
// peer allowed, or fails with a classified error; nothing panics and
// nothing is agreed that the peer did not say.
func FuzzHandshake(f *testing.F) {
	f.Add(true, []byte{0, 0, 0, 1})
	f.Add(true, []byte{0, 0, 0, 7, 0, 0, 0, 9})
	f.Add(true, []byte{})
	f.Add(false, frame(&wire.Hello{Versions: []uint32{1}}))
	f.Add(false, frame(&wire.HelloReply{Version: 1}))
	f.Add(false, frame(&wire.Error{Message: "no"}))
	f.Add(false, frame(&wire.Okay{}))
	f.Add(false, header(wire.TypeHello, 0, 1<<30))
	f.Fuzz(func(t *testing.T, framed bool, input []byte) {
		ctx := context.Background()
		serverIn, clientIn := input, input
		if framed {
			versions := make([]uint32, 0, wire.MaxVersions)
			for i := 0; i+4 <= len(input) && len(versions) < wire.MaxVersions; i += 4 {
				versions = append(versions, binary.BigEndian.Uint32(input[i:]))
			}
			serverIn = frame(&wire.Hello{Versions: versions})
			var chosen uint32
			if len(versions) > 0 {
				chosen = versions[0]
			}
			clientIn = frame(&wire.HelloReply{Version: chosen})
		}

		var sent bytes.Buffer
		srv := wire.NewConn(&fakeConn{r: bytes.NewReader(serverIn), w: &sent}, wire.WithMaxPayload(64<<10))
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

		cli := wire.NewConn(readerConn(clientIn), wire.WithMaxPayload(64<<10))
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
	var (
		remote   *wire.RemoteError
		frameErr *wire.FrameError // any frame-level refusal, which says where
	)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, wire.ErrMalformed), errors.Is(err, wire.ErrUnknownType),
		errors.Is(err, wire.ErrFrameTooLarge), errors.Is(err, wire.ErrUnexpectedMessage),
		errors.Is(err, wire.ErrNoCommonVersion), errors.As(err, &remote), errors.As(err, &frameErr):
	default:
		t.Fatalf("%s handshake: unclassified error: %v", side, err)
	}
	if err.Error() == "" {
		t.Fatalf("%s handshake: empty error message", side)
	}
}
