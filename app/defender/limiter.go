package defender

import (
	"context"
	"sync"
	"time"
)

// Limits are the API's call quotas. Microsoft's are 100 calls per minute and 1,500 per hour
// per application; tests shrink the windows.
type Limits struct {
	PerMinute int
	Minute    time.Duration
	PerHour   int
	Hour      time.Duration
}

// defaultLimits are Microsoft's documented quotas for the Alert API.
var defaultLimits = Limits{PerMinute: 100, Minute: time.Minute, PerHour: 1500, Hour: time.Hour}

// limiter keeps calls within sliding windows: at most n calls in any span of d. A token bucket
// (golang.org/x/time/rate) would allow its burst plus its rate within one window, up to twice
// the quota in the first minute, so the exact rule is kept here: remember the last n call times.
type limiter struct {
	mu      sync.Mutex
	windows []slidingWindow
	blocked time.Time // no call before this (Retry-After)
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error

	waits    int
	waitTime time.Duration
}

type slidingWindow struct {
	n     int
	d     time.Duration
	times []time.Time // ring of the last n call times
	next  int         // index of the oldest once full
}

func newLimiter(l Limits, now func() time.Time, sleep func(context.Context, time.Duration) error) *limiter {
	lim := &limiter{now: now, sleep: sleep}
	for _, w := range []slidingWindow{{n: l.PerMinute, d: l.Minute}, {n: l.PerHour, d: l.Hour}} {
		if w.n > 0 && w.d > 0 {
			// Microsoft counts calls when they arrive; network jitter can bring two calls closer
			// there than they left here. A 5 % margin (3 s on the minute) keeps us inside.
			w.d += w.d / 20
			w.times = make([]time.Time, 0, w.n)
			lim.windows = append(lim.windows, w)
		}
	}
	return lim
}

// Wait blocks until a call is allowed, then counts it.
func (l *limiter) Wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		t := l.now()
		wait := l.blocked.Sub(t)
		for i := range l.windows {
			w := &l.windows[i]
			if len(w.times) == w.n {
				if d := w.d - t.Sub(w.times[w.next]); d > wait {
					wait = d
				}
			}
		}
		if wait <= 0 {
			for i := range l.windows {
				w := &l.windows[i]
				if len(w.times) < w.n {
					w.times = append(w.times, t)
				} else {
					w.times[w.next] = t
					w.next = (w.next + 1) % w.n
				}
			}
			l.mu.Unlock()
			return nil
		}
		l.waits++
		l.waitTime += wait
		l.mu.Unlock()
		if err := l.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// Block holds every call back for d (a 429's Retry-After), whatever the local count says.
func (l *limiter) Block(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := l.now().Add(d); until.After(l.blocked) {
		l.blocked = until
	}
}

func (l *limiter) stats() (int, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waits, l.waitTime
}
