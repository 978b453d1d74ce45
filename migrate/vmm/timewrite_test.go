package vmm

import (
	"errors"
	"math"
	"testing"

	"github.com/migtrace/migtrace/migrate/timedata"
)

func TestPrepareTimeWrite(t *testing.T) {
	const now = 5_000_000_000
	ok := timedata.Data{GuestFreq: 2_000_000_000, GuestTSC: 100, Hrtime: now - 1500, BootHrtime: 1000,
		Wallclock: timedata.Wallclock{Sec: 7}}
	tests := []struct {
		name    string
		mutate  func(*timedata.Data)
		wantErr bool
	}{
		{"accepted", func(*timedata.Data) {}, false},
		{"zero frequency", func(d *timedata.Data) { d.GuestFreq = 0 }, true},
		{"hrtime in the future", func(d *timedata.Data) { d.Hrtime = now + 1 }, true},
		{"boot_hrtime in the future", func(d *timedata.Data) { d.BootHrtime = now + 1 }, true},
		{"hrtime equal to now", func(d *timedata.Data) { d.Hrtime = now }, false},
		{"negative boot_hrtime", func(d *timedata.Data) { d.BootHrtime = -1 << 50 }, false},
		{"latency overflows", func(d *timedata.Data) { d.Hrtime = math.MinInt64 }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ok
			tc.mutate(&d)
			tw, err := PrepareTimeWrite(d, now)
			if tc.wantErr {
				if !errors.Is(err, ErrTimeData) {
					t.Fatalf("err = %v, want ErrTimeData", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			latency := int64(now) - d.Hrtime
			wantTicks := uint64(latency) * 2 // 2 GHz: two ticks a ns
			if tw.Latency != latency || tw.TSCCorrection != wantTicks || tw.Applied.GuestTSC != d.GuestTSC+wantTicks {
				t.Errorf("latency %d, correction %d, TSC %d; want %d, %d, %d",
					tw.Latency, tw.TSCCorrection, tw.Applied.GuestTSC, latency, wantTicks, d.GuestTSC+wantTicks)
			}
			if tw.Applied.Hrtime != now || tw.Applied.BootHrtime != d.BootHrtime || tw.Applied.GuestFreq != d.GuestFreq || tw.Applied.Wallclock != d.Wallclock {
				t.Errorf("applied %+v from %+v", tw.Applied, d)
			}
		})
	}
}
