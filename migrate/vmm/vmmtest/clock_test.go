package vmmtest_test

import (
	"testing"

	"github.com/migtrace/migtrace/migrate/timedata"
	"github.com/migtrace/migtrace/migrate/vmm/vmmtest"
)

func TestManualClock(t *testing.T) {
	c := vmmtest.NewManualClock(100, timedata.Wallclock{Sec: 10, Nsec: 999_999_000})
	steps := []struct {
		name      string
		do        func()
		hrtime    int64
		wallclock timedata.Wallclock
	}{
		{"start", func() {}, 100, timedata.Wallclock{Sec: 10, Nsec: 999_999_000}},
		{"advance carries into seconds", func() { c.Advance(2000) }, 2100, timedata.Wallclock{Sec: 11, Nsec: 1000}},
		{"wall step back leaves hrtime", func() { c.StepWall(-5_000_000_000) }, 2100, timedata.Wallclock{Sec: 6, Nsec: 1000}},
		{"wall step before the epoch clamps", func() { c.StepWall(-100_000_000_000) }, 2100, timedata.Wallclock{}},
	}
	for _, s := range steps {
		s.do()
		hr, wall := c.Now()
		if hr != s.hrtime || wall != s.wallclock {
			t.Errorf("%s: Now() = %d, %v; want %d, %v", s.name, hr, wall, s.hrtime, s.wallclock)
		}
	}
}

func TestSkewClock(t *testing.T) {
	base := vmmtest.NewManualClock(1_000_000_000, timedata.Wallclock{Sec: 100})
	c := vmmtest.NewSkewClock(base, 5_000, 50) // 50 ppm fast
	hr, wall := c.Now()
	if hr != 1_000_005_000 || wall != (timedata.Wallclock{Sec: 100}) {
		t.Fatalf("at start: %d, %v", hr, wall)
	}
	base.Advance(10_000_000_000) // 10 s: 500 µs of drift at 50 ppm
	hr, wall = c.Now()
	if hr != 11_000_005_000 || wall != (timedata.Wallclock{Sec: 110, Nsec: 500_000}) {
		t.Errorf("after 10 s: %d, %v", hr, wall)
	}
	c.StepWall(-1_000_000_000)
	if _, wall = c.Now(); wall != (timedata.Wallclock{Sec: 109, Nsec: 500_000}) {
		t.Errorf("after a -1 s step: %v", wall)
	}
}
