package server

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/vmm"
	"github.com/migtrace/migtrace/migrate/vmm/sim"
)

const shortHTTP = 300 * time.Millisecond

func shortTimeouts(c *Config) {
	c.ReadTimeout, c.WriteTimeout, c.IdleTimeout = shortHTTP, shortHTTP, shortHTTP
}

// The HTTP server drops connections that hold it without finishing a
// request, or sit idle between requests; before, a slow body or an idle
// keep-alive connection was held for ever.
func TestHTTPTimeoutsDropIdlePeers(t *testing.T) {
	srv := startWith(t, false, shortTimeouts)
	tests := []struct {
		name string
		send string // what the peer writes before it goes quiet
		read bool   // read the complete answer first
	}{
		{"half a request line", "GET /v1/inst", false},
		{"headers without their end", "GET /v1/instance HTTP/1.1\r\nHost: x\r\n", false},
		{"a body that stops", "POST /v1/migrate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"source\":", false},
		{"idle after a request", "GET /v1/instance HTTP/1.1\r\nHost: x\r\n\r\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nc, err := net.Dial("tcp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write([]byte(tc.send)); err != nil {
				t.Fatal(err)
			}
			if tc.read {
				// One answer, with its body, then nothing more asked.
				_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 64<<10)
				n, err := nc.Read(buf)
				if err != nil || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) {
					t.Fatalf("answer %q, %v", buf[:n], err)
				}
			}
			took := awaitClosed(t, nc, 5*time.Second)
			if took > 10*shortHTTP {
				t.Errorf("dropped after %v, want about %v", took, shortHTTP)
			}
		})
	}
}

// A migration stream outlives every HTTP timeout: its upgrade clears
// them. Here the source's non-zero memory goes out at 2 MiB/s, several
// times longer than the servers' 300 ms timeouts.
func TestMigrationOutlivesHTTPTimeouts(t *testing.T) {
	const memory = 8 << 20
	src := startWith(t, true, func(c *Config) {
		shortTimeouts(c)
		backend, err := sim.New(sim.WithMemory(memory), sim.WithDirtyRate(64<<10))
		if err != nil {
			t.Fatal(err)
		}
		c.Backend, c.Spec = backend, backend.DefaultSpec()
		c.Migration.MaxBandwidth = 2 << 20
	})
	dst := startWith(t, false, shortTimeouts)
	// Fill half the guest, past its TSC ring, so there is data to send.
	fill := bytes.Repeat([]byte{0x5a}, memory/2)
	if err := src.VM().WritePages(sim.RingPages, fill[:len(fill)-sim.RingPages*vmm.PageSize]); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	res, err := dst.MigrateFrom(context.Background(), src.addr)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("migration over %v with %v HTTP timeouts: %v", took, shortHTTP, err)
	}
	if took < 3*shortHTTP || !res.Verified() {
		t.Errorf("migration took %v (verified %v); the test needs it to outlast the timeouts", took, res.Verified())
	}
	t.Logf("migration took %v", took.Round(time.Millisecond))
}
