package main

import (
	"github.com/spf13/cobra"
)

// newRootCommand builds the whole command tree. There is no package-level
// command state: every invocation (and every test) gets a fresh tree.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "migtrace",
		Short: "Live-migrate VMs and see every phase of it",
		Long: `migtrace is a VM live-migration implementation you can see into: every
phase emits an OpenTelemetry span and a probe, every guest-clock adjustment
emits a structured event, and 'report' rebuilds the classic DTrace tables
from traces.`,
		SilenceErrors: true, // main prints errors and picks the exit status
		SilenceUsage:  true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(
		newVersionCommand(),
		newAdjustCommand(),
		newServeCommand(),
		newMigrateCommand(),
		newMigrateSetCommand(),
		newCancelCommand(),
		newStatusCommand(),
		newResolveCommand(),
		newDemoCommand(),
		newReportCommand(),
		newTraceCommand(),
	)
	return root
}
