package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/report/render"
)

// wallclockFlag is a pflag.Value for "SEC.NSEC" wall clocks.
type wallclockFlag struct{ w timedata.Wallclock }

func (f *wallclockFlag) String() string { return f.w.String() }
func (f *wallclockFlag) Type() string   { return "SEC.NSEC" }
func (f *wallclockFlag) Set(s string) error {
	w, err := timedata.ParseWallclock(s)
	if err != nil {
		return err
	}
	f.w = w
	return nil
}

// adjustResult is the -o json document: the adjusted values, in this order.
type adjustResult struct {
	GuestFreq            uint64 `json:"guest_freq"`
	GuestTSC             uint64 `json:"guest_tsc"`
	GuestTSCDelta        uint64 `json:"guest_tsc_delta"`
	BootHrtime           int64  `json:"boot_hrtime"`
	BootHrtimeDelta      int64  `json:"boot_hrtime_delta"`
	GuestUptimeNs        int64  `json:"guest_uptime_ns"`
	MigrateDeltaNs       int64  `json:"migrate_delta_ns"`
	MigrateDeltaNegative bool   `json:"migrate_delta_negative"`
	Hrtime               int64  `json:"hrtime"`
	Wallclock            string `json:"wallclock"`
}

type adjustError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func newAdjustCommand() *cobra.Command {
	var (
		src       timedata.Data
		srcWall   wallclockFlag
		dstHrtime int64
		dstWall   wallclockFlag
		output    *formatFlag
	)
	cmd := &cobra.Command{
		Use:   "adjust",
		Short: "Compute a time-data adjustment offline, from the numbers in a log",
		Long: `adjust carries a guest's time data from a source host to a destination
host exactly as a migration does: the guest TSC advances by the wall-clock
migration delta times the guest frequency, and boot_hrtime is rebased on
the destination's hrtime so the guest's uptime is preserved.

Exit status: 0 on success, 1 when the adjustment is refused (overflow,
zero frequency, negative hrtime, ...), 2 when a flag is missing or malformed.`,
		Example: `  migtrace adjust --guest-freq 2649958945 --guest-tsc 2330632597459 \
    --src-hrtime 18028032305249 --src-boot-hrtime 17148534696948 \
    --src-wallclock 1683850713.581965192 \
    --dst-hrtime 18018796793122 --dst-wallclock 1683850713.582072774`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd.Flags(), "guest-freq", "guest-tsc", "src-hrtime",
				"src-boot-hrtime", "src-wallclock", "dst-hrtime", "dst-wallclock"); err != nil {
				return err
			}
			src.Wallclock = srcWall.w
			dst, adj, err := timedata.Adjust(src, dstHrtime, dstWall.w)
			out := cmd.OutOrStdout()
			if err != nil {
				if output.Format() == render.FormatJSON {
					kind := "adjust_error"
					var ae *timedata.AdjustError
					if errors.As(err, &ae) {
						kind = string(ae.Kind)
					}
					if werr := writeJSON(out, adjustError{Error: kind, Message: err.Error()}); werr != nil {
						return werr
					}
					return silentFailure(err)
				}
				return fmt.Errorf("adjusting time data: %w", err)
			}
			if output.Format() == render.FormatJSON {
				return writeJSON(out, adjustResult{
					GuestFreq:            dst.GuestFreq,
					GuestTSC:             dst.GuestTSC,
					GuestTSCDelta:        adj.GuestTSCDelta,
					BootHrtime:           dst.BootHrtime,
					BootHrtimeDelta:      adj.BootHrtimeDelta,
					GuestUptimeNs:        adj.GuestUptime,
					MigrateDeltaNs:       adj.MigrateDelta,
					MigrateDeltaNegative: adj.MigrateDeltaNegative,
					Hrtime:               dst.Hrtime,
					Wallclock:            dst.Wallclock.String(),
				})
			}
			return writeAdjustText(out, src, dst, adj)
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&src.GuestFreq, "guest-freq", 0, "guest TSC frequency `HZ`")
	f.Uint64Var(&src.GuestTSC, "guest-tsc", 0, "source guest TSC, in `TICKS`")
	f.Int64Var(&src.Hrtime, "src-hrtime", 0, "source host hrtime at the read, `NS`")
	f.Int64Var(&src.BootHrtime, "src-boot-hrtime", 0, "source guest boot_hrtime, `NS` (may be negative)")
	f.Var(&srcWall, "src-wallclock", "source host wall clock at the read")
	f.Int64Var(&dstHrtime, "dst-hrtime", 0, "destination host hrtime at its snapshot, `NS`")
	f.Var(&dstWall, "dst-wallclock", "destination host wall clock at its snapshot")
	output = addFormatFlag(cmd, render.FormatText, render.FormatJSON)
	return cmd
}

// noArgs rejects positional arguments as a usage error (exit 2).
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q", args[0])
	}
	return nil
}

// requireFlags fails with a usage error naming every missing flag.
func requireFlags(fs *pflag.FlagSet, names ...string) error {
	var missing []string
	for _, n := range names {
		if !fs.Changed(n) {
			missing = append(missing, "--"+n)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return usageErrorf("missing required flag %s", missing[0])
	}
	return usageErrorf("missing required flags %v", missing)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeAdjustText explains the adjustment the way propolis's destination
// log does, so the two can be compared line by line.
func writeAdjustText(w io.Writer, src, dst timedata.Data, adj timedata.Adjustments) error {
	ew := render.NewErrWriter(w)
	ew.Printf("Time data adjustments:\n")
	ew.Printf("- guest TSC freq: %d Hz = %d.%09d GHz\n", src.GuestFreq, src.GuestFreq/timedata.NsPerSec, src.GuestFreq%timedata.NsPerSec)
	ew.Printf("- guest uptime ns: %d\n", adj.GuestUptime)
	ew.Printf("- migration time delta: %v\n", time.Duration(adj.MigrateDelta))
	if adj.MigrateDeltaNegative {
		ew.Printf("- WARNING: the destination wall clock is behind the source's; the migration delta was clamped to 0\n")
	}
	ew.Printf("- guest_tsc adjustment = %d + %d = %d\n", src.GuestTSC, adj.GuestTSCDelta, dst.GuestTSC)
	ew.Printf("- boot_hrtime adjustment = %d ---> %d - %d = %d\n", src.BootHrtime, dst.Hrtime, adj.BootHrtimeTotal, dst.BootHrtime)
	ew.Printf("- boot_hrtime delta: %+d ns\n", adj.BootHrtimeDelta)
	ew.Printf("- dest highres clock time: %d\n", dst.Hrtime)
	ew.Printf("- dest wall clock time: %ss\n", dst.Wallclock)
	return ew.Err()
}
