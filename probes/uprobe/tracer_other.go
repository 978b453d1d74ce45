//go:build !linux

package uprobe

import (
	"context"
	"fmt"
	"runtime"
)

// Tracer is unavailable on this OS; Attach always fails.
type Tracer struct{}

// Attach fails with ErrNotSupported: uprobes are a Linux feature.
func Attach(targets []Target, opts *Options) (*Tracer, error) {
	return nil, fmt.Errorf("attaching uprobes on %s: %w", runtime.GOOS, ErrNotSupported)
}

// Read fails with ErrNotSupported.
func (t *Tracer) Read(ctx context.Context) ([]Record, error) { return nil, ErrNotSupported }

// Binary is empty: there is no tracer.
func (t *Tracer) Binary() string { return "" }

// Lost is always 0.
func (t *Tracer) Lost() (uint64, error) { return 0, ErrNotSupported }

// Close does nothing.
func (t *Tracer) Close() error { return nil }
