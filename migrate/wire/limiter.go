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

// limiterSlice is the longest a sender sleeps before it looks at the rate
// again, so that a rate changed mid-wait (setRate) applies within it.
const limiterSlice = 50 * time.Millisecond

func newLimiter(bytesPerSec int64) *limiter {
	rate := max(float64(bytesPerSec), 0)
	burst := max(rate*limiterBurstTime.Seconds(), 64<<10)
	return &limiter{rate: rate, burst: burst, tokens: burst, now: time.Now, sleep: sleepCtx}
}

// setRate changes the rate to bytesPerSec, ≤ 0 meaning no cap, for the
// bytes still owed as well as those to come.
func (l *limiter) setRate(bytesPerSec int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.refill() // what the old rate earned so far
	}
	l.rate = max(float64(bytesPerSec), 0)
	l.burst = max(l.rate*limiterBurstTime.Seconds(), 64<<10)
	l.tokens = min(l.tokens, l.burst)
}

// refill adds what the rate earned since the last look; l.mu is held.
func (l *limiter) refill() {
	now := l.now()
	if !l.last.IsZero() && l.rate > 0 {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
}

// wait takes n bytes from the bucket and blocks until the bucket is no
// longer in debt, or ctx ends. It sleeps in slices of at most
// limiterSlice, so a new rate takes effect mid-wait.
func (l *limiter) wait(ctx context.Context, n int) error {
	l.mu.Lock()
	l.refill()
	l.tokens -= float64(n)
	for {
		if l.rate <= 0 {
			// Uncapped: nothing is owed.
			l.tokens = max(l.tokens, 0)
		}
		debt := -l.tokens
		rate := l.rate
		l.mu.Unlock()
		if debt <= 0 {
			return nil
		}
		d := min(time.Duration(debt/rate*float64(time.Second)), limiterSlice)
		if err := l.sleep(ctx, max(d, time.Microsecond)); err != nil {
			return err
		}
		l.mu.Lock()
		l.refill()
	}
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
