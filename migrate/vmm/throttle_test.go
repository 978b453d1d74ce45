package vmm

import (
	"errors"
	"testing"
	"time"
)

func TestThrottleSleep(t *testing.T) {
	tests := []struct {
		percent int
		sleep   time.Duration
		valid   bool
	}{
		{-1, 0, false},
		{0, 0, true},
		{20, 2500 * time.Microsecond, true}, // 10 ms × 20/80
		{50, 10 * time.Millisecond, true},
		{90, 90 * time.Millisecond, true},
		{MaxThrottle, 990 * time.Millisecond, true},
		{100, 0, false},
	}
	for _, tc := range tests {
		err := CheckThrottle(tc.percent)
		if (err == nil) != tc.valid {
			t.Errorf("CheckThrottle(%d) = %v, want valid %v", tc.percent, err, tc.valid)
		}
		if err != nil && !errors.Is(err, ErrThrottleRange) {
			t.Errorf("CheckThrottle(%d) = %v, want ErrThrottleRange", tc.percent, err)
		}
		if got := ThrottleSleep(tc.percent); got != tc.sleep {
			t.Errorf("ThrottleSleep(%d) = %v, want %v", tc.percent, got, tc.sleep)
		}
		// The sleep is the throttle's share of each slice plus sleep.
		if tc.valid && tc.percent > 0 {
			share := float64(tc.sleep) / float64(tc.sleep+ThrottleSlice) * 100
			if d := share - float64(tc.percent); d < -0.01 || d > 0.01 {
				t.Errorf("ThrottleSleep(%d) sleeps %.3f %% of the time", tc.percent, share)
			}
		}
	}
}
