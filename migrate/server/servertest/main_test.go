package servertest

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine a test started outlives the tests,
// then deletes the binary Binary built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		RemoveBinary()
		os.Exit(code)
	}))
}
