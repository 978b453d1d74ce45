package sim_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine, a vCPU's above all, outlives
// the tests: every VM a test makes must be destroyed, and Destroy must
// stop its vCPUs.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
