package wire

import (
	"context"
	"net"
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

// A rate changed while a sender waits out its debt applies to the rest
// of that debt: raising it shortens the wait, lowering it lengthens it,
// and 0 lifts the cap at once.
func TestLimiterRetunedMidWait(t *testing.T) {
	const frame = 8 << 20 // 8 s of debt at 1 MiB/s
	tests := []struct {
		name    string
		newRate int64
		want    time.Duration // total sleep for the frame
	}{
		// 1 s at 1 MiB/s repays 1 MiB; the rest at 7 MiB/s takes 1 s more.
		{"raised", 7 << 20, 2 * time.Second},
		// The rest at 512 KiB/s takes 14 s.
		{"lowered", 512 << 10, 15 * time.Second},
		{"lifted", 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(1 << 20)
			l.tokens = 0 // no burst banked: the whole frame is debt
			clk := &fakeClock{now: time.Unix(1000, 0)}
			l.now = func() time.Time { return clk.now }
			l.last = clk.now
			l.sleep = func(_ context.Context, d time.Duration) error {
				if d > limiterSlice {
					t.Fatalf("slept %v in one go, more than the %v slice", d, limiterSlice)
				}
				clk.slept += d
				clk.now = clk.now.Add(d)
				if clk.slept == time.Second {
					// As if another goroutine retuned it now; setRate
					// takes the lock wait does not hold while asleep.
					l.setRate(tt.newRate)
				}
				return nil
			}
			if err := l.wait(context.Background(), frame); err != nil {
				t.Fatal(err)
			}
			if diff := clk.slept - tt.want; diff > time.Millisecond || diff < -time.Millisecond {
				t.Fatalf("slept %v in all, want %v", clk.slept, tt.want)
			}
		})
	}
}

// A Conn with no cap gains one from SetMaxBandwidth, and loses it again.
func TestConnSetMaxBandwidth(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := NewConn(a)
	if c.lim.Load() != nil {
		t.Fatal("an uncapped Conn has a limiter")
	}
	c.SetMaxBandwidth(1 << 20)
	l := c.lim.Load()
	if l == nil || l.rate != 1<<20 {
		t.Fatalf("after SetMaxBandwidth(1 MiB/s): limiter %+v", l)
	}
	c.SetMaxBandwidth(0)
	if l.rate != 0 {
		t.Fatalf("after SetMaxBandwidth(0): rate %v, want 0 (no cap)", l.rate)
	}
	if err := l.wait(context.Background(), 64<<20); err != nil {
		t.Fatalf("uncapped wait: %v", err)
	}
}
