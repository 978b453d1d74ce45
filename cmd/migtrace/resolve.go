package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/migtrace/migtrace/migrate"
	"github.com/migtrace/migtrace/migrate/server"
	"github.com/migtrace/migtrace/report/render"
)

func newResolveCommand() *cobra.Command {
	var (
		addr, id string
		output   *formatFlag
		tlsf     tlsFlags
	)
	cmd := &cobra.Command{
		Use:   "resolve --server ADDR [--migration ID] commit|abort",
		Short: "Settle a handoff that lost its peer: which side runs the guest",
		Long: `resolve settles a migration whose handoff lost a message and whose peer
cannot be asked, because it died or is cut off. The server's state is then
handoff-pending: it holds the guest paused (see docs/protocol.md §9).

  commit   the guest runs on the destination: a source destroys its paused
           copy; a destination resumes its copy.
  abort    the guest runs on the source: a source resumes its paused copy;
           a destination discards its copy.

Only you know that the other side is dead: resolve asks the peer first, when
it can be reached, and refuses a resolution its record contradicts. Without
--migration the server's current migration is resolved.

Exit status: 0 when the handoff was settled, 1 when the server refused (the
message says why), 2 for bad flags.`,
		Example: `  migtrace status --server 127.0.0.1:7002        # state: handoff-pending
  migtrace resolve --server 127.0.0.1:7002 commit`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireFlags(cmd.Flags(), "server"); err != nil {
				return err
			}
			action, err := migrate.ParseResolution(args[0])
			if err != nil {
				return usageErrorf("%v", err)
			}
			hc, secure, err := tlsf.httpClient(10 * time.Second)
			if err != nil {
				return err
			}
			c := server.NewClient(addr, hc, secure)
			ctx := cmd.Context()
			if id == "" {
				st, err := c.Instance(ctx)
				if err != nil {
					return err
				}
				if st.Migration == nil {
					return fmt.Errorf("%s has no migration to resolve", addr)
				}
				id = st.Migration.ID
			}
			st, err := c.Resolve(ctx, id, action)
			var apiErr *server.APIError
			if errors.As(err, &apiErr) && apiErr.Reason != "" {
				return fmt.Errorf("%s refused to %s migration %s: %s", addr, action, id, apiErr.Reason)
			}
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output.Format() == render.FormatJSON {
				return writeJSON(out, st)
			}
			where := "the destination"
			if action == migrate.ResolveAbort {
				where = "the source"
			}
			_, err = fmt.Fprintf(out, "migration %s: %s on the %s at %s; the guest runs on %s\n", id, action, st.Role, addr, where)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "server", "", "instance server `ADDR` (its --listen) holding the pending handoff")
	f.StringVar(&id, "migration", "", "migration `ID` (default: the server's current migration)")
	output = addFormatFlag(cmd, render.FormatText, render.FormatJSON)
	tlsf.register(f)
	_ = cmd.RegisterFlagCompletionFunc("server", cobra.NoFileCompletions)
	cmd.ValidArgs = []string{string(migrate.ResolveCommit), string(migrate.ResolveAbort)}
	return cmd
}
