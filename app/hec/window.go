package hec

import (
	"context"
	"sync"
)

// The window of batches in flight: how many batches may be sent and unconfirmed at once, and
// how many compressed bytes they may hold.
//
// With Window "adaptive" the window starts at one batch. A full batch that finds the window
// full doubles it, up to MaxInFlight: a backlog is being drained faster than acks come back. A
// batch sent before it was full (the linger ran out, or the reader had nothing more) shows
// the collector has caught up, and the window closes to one batch again, so that a crash then
// re-sends as little as possible. With "fixed" the window is always MaxInFlight.

type window struct {
	max      int
	fixed    bool
	maxBytes int64

	mu      sync.Mutex
	limit   int   // batches allowed now
	batches int   // batches admitted and not yet released
	bytes   int64 // compressed bytes reserved by them
	widest  int   // the largest limit reached (Stats.WindowMax)
	peak    int64 // the most bytes held at once (Stats.BytesInFlightMax)
	changed chan struct{}
}

func newWindow(max int, fixed bool, maxBytes int64) *window {
	w := &window{max: max, fixed: fixed, maxBytes: maxBytes, limit: 1, widest: 1, changed: make(chan struct{})}
	if fixed {
		w.limit, w.widest = max, max
	}
	return w
}

// waitLocked waits, with w.mu released, for the next change; it returns with w.mu held, or,
// when ctx ends, without it.
func (w *window) waitLocked(ctx context.Context) error {
	ch := w.changed
	w.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.mu.Lock()
	return nil
}

// signalLocked wakes every waiter.
func (w *window) signalLocked() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// admit waits for room for one more batch; full says the batch was sealed because it was
// full (the backlog case); one that was not closes the window to one batch after it.
func (w *window) admit(ctx context.Context, full bool) error {
	w.mu.Lock()
	for {
		if w.batches < w.limit {
			w.batches++
			if !w.fixed && !full {
				// Caught up: the batches after this one go one at a time. This one goes at
				// once, beside those in flight (the last of a backlog need not wait for all
				// the others' acks, and its own lost ack is seen overdue against theirs).
				w.limit = 1
			}
			w.mu.Unlock()
			return nil
		}
		if !w.fixed && full && w.limit < w.max {
			w.limit = min(2*w.limit, w.max)
			w.widest = max(w.widest, w.limit)
			continue
		}
		if err := w.waitLocked(ctx); err != nil {
			return err
		}
	}
}

// reserve waits until n more compressed bytes fit under the cap; a batch alone always fits.
func (w *window) reserve(ctx context.Context, n int64) error {
	w.mu.Lock()
	for w.bytes > 0 && w.bytes+n > w.maxBytes {
		if err := w.waitLocked(ctx); err != nil {
			return err
		}
	}
	w.bytes += n
	w.peak = max(w.peak, w.bytes)
	w.mu.Unlock()
	return nil
}

// unreserve gives back n bytes (the batch is confirmed, or given up).
func (w *window) unreserve(n int64) {
	w.mu.Lock()
	w.bytes -= n
	w.signalLocked()
	w.mu.Unlock()
}

// release gives back a batch's place.
func (w *window) release() {
	w.mu.Lock()
	w.batches--
	w.signalLocked()
	w.mu.Unlock()
}

// figures returns the widest limit reached and the peak of bytes held.
func (w *window) figures() (int, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.widest, w.peak
}
