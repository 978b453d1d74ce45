package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/migrate/server/servertest"
)

// serveProcess runs `migtrace serve` with args until the test ends and
// returns its API address once it answers.
func serveProcess(t *testing.T, args ...string) (string, *servertest.Proc) {
	t.Helper()
	p := servertest.Start(t, servertest.Binary(t), servertest.Options{Args: args})
	return p.Addr(), p
}

// instanceStatus asks the server at addr for GET /v1/instance.
func instanceStatus(addr string) (server.InstanceStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return server.NewClient(addr, &http.Client{Timeout: 5 * time.Second}, false).Instance(ctx)
}
