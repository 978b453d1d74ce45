package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/migtrace/migtrace/report/render"
)

// formatFlag is the -o/--output flag of every command: a value from a
// fixed list, checked when the flag is parsed, so a bad value is a usage
// error (exit 2) before the command does anything.
type formatFlag struct {
	value   render.Format
	allowed []render.Format
}

// addFormatFlag adds -o/--output to cmd, accepting the given formats;
// the first is the default.
func addFormatFlag(cmd *cobra.Command, allowed ...render.Format) *formatFlag {
	f := &formatFlag{value: allowed[0], allowed: allowed}
	cmd.Flags().VarP(f, "output", "o", "output format: "+f.names())
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(strings.Split(f.names(), ", "), cobra.ShellCompDirectiveNoFileComp))
	return f
}

// Format is the chosen format.
func (f *formatFlag) Format() render.Format { return f.value }

func (f *formatFlag) String() string { return string(f.value) }

func (f *formatFlag) Type() string { return "format" }

func (f *formatFlag) Set(s string) error {
	for _, a := range f.allowed {
		if string(a) == s {
			f.value = a
			return nil
		}
	}
	return fmt.Errorf("want %s", f.names())
}

func (f *formatFlag) names() string {
	names := make([]string, len(f.allowed))
	for i, a := range f.allowed {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}
