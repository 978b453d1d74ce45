package tracing_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine a test started outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
