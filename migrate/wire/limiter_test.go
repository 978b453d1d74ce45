package wire

import (
	"context"
	"testing"
	"time"
)

// fakeClock advances only when the limiter sleeps.
type fakeClock struct {
	now   time.Time
	slept time.Duration
}

func (c *fakeClock) install(l *limiter) {
	l.now = func() time.Time { return c.now }
	l.sleep = func(_ context.Context, d time.Duration) error {
		c.slept += d
		c.now = c.now.Add(d)
		return nil
	}
}

func TestLimiterRate(t *testing.T) {
	tests := []struct {
		name        string
		bytesPerSec int64
		frame       int
		frames      int
	}{
		{"frames larger than the bucket", 1 << 20, 4 << 20, 10},
		{"small frames", 10 << 20, 1 << 10, 20000},
		{"slow link", 100 << 10, 4096, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(tt.bytesPerSec)
			clk := &fakeClock{now: time.Unix(1000, 0)}
			clk.install(l)
			for range tt.frames {
				if err := l.wait(context.Background(), tt.frame); err != nil {
					t.Fatal(err)
				}
			}
			// The first burst is free; everything after it runs at the rate.
			total := float64(tt.frame * tt.frames)
			want := time.Duration((total - l.burst) / float64(tt.bytesPerSec) * float64(time.Second))
			if diff := clk.slept - want; diff > time.Millisecond || diff < -time.Millisecond {
				t.Fatalf("slept %v, want %v", clk.slept, want)
			}
		})
	}
}

func TestLimiterRefillsWhileIdle(t *testing.T) {
	l := newLimiter(1 << 20)
	clk := &fakeClock{now: time.Unix(1000, 0)}
	clk.install(l)
	_ = l.wait(context.Background(), int(l.burst)) // empty the bucket
	clk.now = clk.now.Add(time.Second)             // idle: refills, capped at the burst
	if err := l.wait(context.Background(), int(l.burst)); err != nil || clk.slept != 0 {
		t.Fatalf("after an idle second, a burst waited %v (%v)", clk.slept, err)
	}
	_ = l.wait(context.Background(), 1<<20)
	if clk.slept < 999*time.Millisecond {
		t.Fatalf("idle time was banked beyond the burst: slept only %v", clk.slept)
	}
}

func TestLimiterHonoursContext(t *testing.T) {
	l := newLimiter(1) // one byte per second
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.wait(ctx, 1<<20); err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
