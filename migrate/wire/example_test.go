package wire_test

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/migtrace/migtrace/migrate/wire"
)

func ExampleNegotiate() {
	v, err := wire.Negotiate([]uint32{1, 2, 3}, []uint32{2, 3, 4})
	fmt.Println(v, err)

	_, err = wire.Negotiate([]uint32{1}, []uint32{2, 3})
	fmt.Println(err)
	// Output:
	// 3 <nil>
	// no common protocol version: ours [1], theirs [2 3]
}

func ExampleEstimateOffset() {
	// Three probes; the source's clock runs 5 ms ahead. The second probe
	// met the least queueing, so it is the one kept.
	samples := []wire.ClockSample{
		{T1: 1_000_000, T2: 8_000_000, T3: 8_100_000, T4: 6_100_000},
		{T1: 10_000_000, T2: 15_200_000, T3: 15_250_000, T4: 10_450_000},
		{T1: 20_000_000, T2: 26_000_000, T3: 26_000_000, T4: 23_000_000},
	}
	est, err := wire.EstimateOffset(samples)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("source ahead by %d ns ± %d ns (delay %d ns, %d samples)\n",
		est.OffsetNs, est.ErrorBoundNs, est.RTTNs, est.Samples)
	// Output:
	// source ahead by 5000000 ns ± 200000 ns (delay 400000 ns, 3 samples)
}

func ExampleConn() {
	ctx := context.Background()
	srcEnd, dstEnd := net.Pipe()
	source, destination := wire.NewConn(srcEnd), wire.NewConn(dstEnd)
	defer source.Close()
	defer destination.Close()

	go func() {
		if _, err := wire.HandshakeServer(ctx, source, wire.SupportedVersions); err != nil {
			return
		}
		pages := wire.NewPageData(2) // sent without copying the pages
		pages.First = 100
		copy(pages.Data, "guest memory")
		_ = source.Send(ctx, &wire.RoundBegin{Round: 1, Pages: 2})
		_ = source.Send(ctx, pages)
	}()

	version, err := wire.HandshakeClient(ctx, destination, wire.SupportedVersions)
	if err != nil {
		fmt.Println(err)
		return
	}
	begin, err := wire.Expect[*wire.RoundBegin](ctx, destination)
	if err != nil {
		fmt.Println(err)
		return
	}
	pages, err := wire.Expect[*wire.PageData](ctx, destination)
	if err != nil {
		fmt.Println(err)
		return
	}
	// pages.Data is valid until the next Recv: copy it out before then.
	fmt.Printf("version %d, round %d: %d pages from page %d: %q\n",
		version, begin.Round, pages.Count, pages.First, pages.Data[:12])
	// Output:
	// version 2, round 1: 2 pages from page 100: "guest memory"
}

// The source serves the migration stream on its ordinary HTTP address; the
// destination dials it. (Not run: it needs two servers and certificates.)
func ExampleDial() {
	// Source: a handler on its HTTP mux, served over TLS with
	// ServerTLSConfig when --tls-* flags are given.
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/migrate/stream", func(w http.ResponseWriter, r *http.Request) {
		nc, err := wire.Upgrade(w, r)
		if err != nil {
			return // Upgrade has answered the request
		}
		c := wire.NewConn(nc, wire.WithMaxBandwidth(64<<20))
		defer c.Close()
		if _, err := wire.HandshakeServer(r.Context(), c, wire.SupportedVersions); err != nil {
			return
		}
		// ... the source's phases ...
	})
	_ = mux // served by the source's http.Server

	// Destination: dial the source's listen address.
	ctx := context.Background()
	tlsConf, err := wire.ClientTLSConfig("client.crt", "client.key", "ca.crt")
	if err != nil {
		fmt.Println(err)
		return
	}
	nc, err := wire.Dial(ctx, "source.example:7000", tlsConf, "/v1/migrate/stream")
	if err != nil {
		fmt.Println(err)
		return
	}
	c := wire.NewConn(nc)
	defer c.Close()
	if _, err := wire.HandshakeClient(ctx, c, wire.SupportedVersions); err != nil {
		fmt.Println(err)
		return
	}
	// ... the destination's phases ...
}
