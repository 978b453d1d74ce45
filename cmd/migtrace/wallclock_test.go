package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm"
)

func wallNs(w timedata.Wallclock) int64 { return int64(w.Sec)*timedata.NsPerSec + int64(w.Nsec) }

// --sim-wallclock-offset parses as a Go duration and reaches the sim
// guest's time data: its wall clock lies between two system-clock readings
// taken around it, shifted by the offset.
func TestSimWallclockOffsetFlag(t *testing.T) {
	tests := []struct {
		args      []string
		want      time.Duration
		parseErr  bool
		buildWant string // substring of the usage error build returns
	}{
		{args: nil, want: 0},
		{args: []string{"--sim-wallclock-offset", "3ms"}, want: 3 * time.Millisecond},
		{args: []string{"--sim-wallclock-offset=-1.5s"}, want: -1500 * time.Millisecond},
		{args: []string{"--sim-wallclock-offset", "250us"}, want: 250 * time.Microsecond},
		{args: []string{"--sim-wallclock-offset", "3"}, parseErr: true},
		{args: []string{"--sim-wallclock-offset", "soon"}, parseErr: true},
		{args: []string{"--backend", "kvm", "--sim-wallclock-offset", "3ms"}, buildWant: "applies to --backend sim only"},
		{args: []string{"--sim-wallclock-offset", "-876000h"}, buildWant: "wall-clock offset"},
	}
	for _, tc := range tests {
		t.Run("args="+strings.Join(tc.args, " "), func(t *testing.T) {
			fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
			fs.SetOutput(new(strings.Builder))
			var f vmFlags
			f.register(fs)
			f.registerSimClock(fs)
			err := fs.Parse(tc.args)
			if tc.parseErr {
				if err == nil {
					t.Fatalf("parsing %q succeeded, want an error", tc.args)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.wallOffset != tc.want && tc.buildWant == "" {
				t.Errorf("offset %v, want %v", f.wallOffset, tc.want)
			}
			b, spec, err := f.build(vmm.Limits{})
			if tc.buildWant != "" {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), tc.buildWant) {
					t.Fatalf("build: %v, want a usage error containing %q", err, tc.buildWant)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			spec.MemoryBytes = 2 << 20
			vm, err := b.New(spec)
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Destroy()
			off := int64(tc.want)
			_, w0 := vmm.SystemClock().Now()
			d, err := vm.ReadTimeData(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			_, w1 := vmm.SystemClock().Now()
			if g := wallNs(d.Wallclock); g < wallNs(w0)+off || g > wallNs(w1)+off {
				t.Errorf("guest time data wall clock %s, want within [%d, %d]", d.Wallclock, wallNs(w0)+off, wallNs(w1)+off)
			}
		})
	}
}

// Only serve has the flag: demo runs both hosts on one backend, where an
// offset would shift both ends alike.
func TestSimWallclockOffsetOnlyOnServe(t *testing.T) {
	if newServeCommand().Flags().Lookup("sim-wallclock-offset") == nil {
		t.Error("serve lacks --sim-wallclock-offset")
	}
	if newDemoCommand().Flags().Lookup("sim-wallclock-offset") != nil {
		t.Error("demo has --sim-wallclock-offset, which would shift both of its hosts alike")
	}
}
