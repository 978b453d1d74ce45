package uprobe_test

import (
	"os"
	"testing"

	"github.com/migtrace/migtrace/probes/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testutil.Cleanup()
	os.Exit(code)
}
