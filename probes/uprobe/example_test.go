package uprobe_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/migtrace/migtrace/probes"
	"github.com/migtrace/migtrace/probes/uprobe"
)

// Attach places entry uprobes on functions of a running Go process; Read
// returns their records in timestamp order until the process exits.
func ExampleAttach() {
	pid := os.Getpid() // any process running a binary with the probes
	tr, err := uprobe.Attach([]uprobe.Target{
		{Symbol: probes.IDPhaseBegin.Symbol(), Cookie: uint64(probes.IDPhaseBegin)},
		{Symbol: probes.IDPhaseEnd.Symbol(), Cookie: uint64(probes.IDPhaseEnd)},
	}, &uprobe.Options{PID: pid})
	if errors.Is(err, uprobe.ErrPermission) {
		fmt.Println("run as root")
		return
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	for {
		recs, err := tr.Read(context.Background())
		if err != nil {
			return // uprobe.ErrProcessExited, or the context ended
		}
		for _, r := range recs {
			fmt.Println(r.Timestamp, probes.ID(r.Cookie), uint8(r.Args[1]), int64(r.Args[2]))
		}
	}
}
