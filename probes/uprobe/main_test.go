package uprobe_test

import (
	"os"
	"testing"

	"github.com/migtrace/migtrace/probes/probetest"
)

func TestMain(m *testing.M) { os.Exit(probetest.RunMain(m)) }
