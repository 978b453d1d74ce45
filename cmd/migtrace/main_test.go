package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/migtrace/migtrace/migrate/server/servertest"
)

// TestMain fails the run if a goroutine a test started outlives the tests,
// then deletes the migtrace binary the serve tests built (goleak's Cleanup
// runs after its check and must exit).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		servertest.RemoveBinary()
		os.Exit(code)
	}))
}
