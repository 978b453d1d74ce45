//go:build !linux

package lab_test

import (
	"context"
	"errors"
	"testing"

	"github.com/migtrace/migtrace/migrate/lab"
)

// Off Linux every entry point says so with ErrUnsupported.
func TestUnsupportedOffLinux(t *testing.T) {
	checks := []struct {
		name string
		err  error
	}{
		{"Available", lab.Available()},
		{"TimeNamespaces", lab.TimeNamespaces()},
	}
	_, err := lab.New(context.Background(), lab.Config{})
	checks = append(checks, struct {
		name string
		err  error
	}{"New", err})
	for _, c := range checks {
		if !errors.Is(c.err, lab.ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", c.name, c.err)
		}
	}
}
