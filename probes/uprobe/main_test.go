package uprobe_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/migtrace/migtrace/probes/probetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(sharedBuilds{m}) }

// sharedBuilds runs the tests under probetest.RunMain, which builds each
// target once for them all, for goleak.VerifyTestMain, which calls Run.
type sharedBuilds struct{ m *testing.M }

func (s sharedBuilds) Run() int { return probetest.RunMain(s.m) }
