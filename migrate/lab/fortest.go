package lab

import (
	"context"
	"errors"
	"testing"
	"time"
)

// ForTest returns a new lab that is closed when t ends, passed or failed;
// a failed test also logs each host's serve output. It skips t, with the
// one-line reason, only where Available says this machine cannot run a
// lab at all.
func ForTest(t testing.TB, cfg Config) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := New(ctx, cfg)
	if errors.Is(err, ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range l.Hosts() {
				if logs := h.Logs(); logs != "" {
					t.Logf("host %s serve output:\n%s", h.Name(), logs)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
	return l
}
