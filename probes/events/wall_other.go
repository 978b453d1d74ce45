//go:build !unix

package events

import (
	"errors"
	"time"
)

// MonotonicToWall fails: this OS has no CLOCK_MONOTONIC to read, nor
// probe records that would need one.
func MonotonicToWall() (time.Duration, error) {
	return 0, errors.New("CLOCK_MONOTONIC is not available on this OS")
}
