package migrate

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/wire"
	"github.com/migtrace/migtrace/tracing/model"
	"github.com/migtrace/migtrace/tracing/schema"
)

// DefaultHandshakeTimeout bounds Accept for a server that sets nothing
// shorter: a destination answers the handshake in a round trip, so a peer
// still silent after this is not one.
const DefaultHandshakeTimeout = 5 * time.Second

// Stream is a migration stream whose peer has completed the version
// handshake, so it speaks the protocol: a server can claim its VM for it.
type Stream struct {
	nc      net.Conn
	conn    *wire.Conn // nil until the handshake has run
	version uint32
}

// Accept runs the source's side of the version handshake on nc, a stream
// a destination opened, within ctx (which should carry a short deadline).
// On failure it closes nc. cfg is the Config the source will run with.
func Accept(ctx context.Context, nc net.Conn, cfg Config) (*Stream, error) {
	cfg = cfg.withDefaults()
	c := newStreamConn(nc, cfg)
	version, err := wire.HandshakeServer(ctx, c, wire.SupportedVersions)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	return &Stream{nc: nc, conn: c, version: version}, nil
}

// Refuse tells the peer why the stream will not be served, as an Error in
// Sync (the destination is waiting for the Sync message), and closes it.
func (st *Stream) Refuse(ctx context.Context, cause error) {
	_ = st.conn.SendError(ctx, schema.PhaseSync, cause)
	_ = st.conn.Close()
}

// RunSourceStream is RunSource on a stream Accept returned.
func RunSourceStream(ctx context.Context, st *Stream, vm vmm.VM, id ID, cfg Config) (*model.Side, error) {
	return runSource(ctx, st, vm, id, cfg)
}

func newStreamConn(nc net.Conn, cfg Config) *wire.Conn {
	return wire.NewConn(nc, wire.WithIOTimeout(cfg.IOTimeout), wire.WithMaxBandwidth(cfg.MaxBandwidth))
}
