package wire

import (
	"context"
	"sync"
	"time"
)

// limiter is a token bucket in bytes that may go into debt: a frame larger
// than the bucket is sent whole, and the sender then waits until the debt is
// repaid. This keeps the long-run rate exact whatever the frame size, which
// golang.org/x/time/rate cannot do without splitting frames (its WaitN fails
// for n above the burst).
type limiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64 // bucket capacity, bytes
	tokens float64
	last   time.Time

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// limiterBurstTime is how much traffic, in time at the capped rate, may go
// out back to back after an idle spell.
const limiterBurstTime = 50 * time.Millisecond

func newLimiter(bytesPerSec int64) *limiter {
	rate := float64(bytesPerSec)
	burst := max(rate*limiterBurstTime.Seconds(), 64<<10)
	return &limiter{rate: rate, burst: burst, tokens: burst, now: time.Now, sleep: sleepCtx}
}

// wait takes n bytes from the bucket and blocks until the bucket is no
// longer in debt, or ctx ends.
func (l *limiter) wait(ctx context.Context, n int) error {
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	l.tokens -= float64(n)
	debt := -l.tokens
	l.mu.Unlock()
	if debt <= 0 {
		return nil
	}
	return l.sleep(ctx, time.Duration(debt/l.rate*float64(time.Second)))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
