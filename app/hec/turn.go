package hec

import (
	"context"
	"sync"
)

// turns make batches take their first request's place on a channel in the order they were
// submitted. With one request at a time per channel, that keeps HEC's ack ids, the tickets
// and the caller's records in one order, so that after a crash the batches HEC took form
// one unbroken run behind the checkpoint (a later batch sent before an earlier one would
// leave a gap, and everything after a gap is sent again).
type turns struct {
	mu       sync.Mutex
	taken    uint64          // orders handed out
	next     uint64          // the order whose turn it is
	finished map[uint64]bool // orders finished out of turn
	changed  chan struct{}
}

// take hands out the next order (Submit calls it, one at a time).
func (t *turns) take() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.taken
	t.taken++
	return o
}

// wait blocks until it is order's turn.
func (t *turns) wait(ctx context.Context, order uint64) error {
	for {
		t.mu.Lock()
		if t.next >= order {
			t.mu.Unlock()
			return nil
		}
		if t.changed == nil {
			t.changed = make(chan struct{})
		}
		ch := t.changed
		t.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// done ends order's turn (or gives it up, if it never came): the next may go.
func (t *turns) done(order uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished == nil {
		t.finished = map[uint64]bool{}
	}
	t.finished[order] = true
	for t.finished[t.next] {
		delete(t.finished, t.next)
		t.next++
	}
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
}
