package hec

import (
	"context"
	"sync"
	"time"
)

// BatchSender batches records as they come and submits each batch when it is full, or when its
// first record has waited Linger. Each batch's Tag is the tag given with its last record, so
// a caller that tags records with checkpoint positions learns, from each confirmed batch,
// how far it may commit.
type BatchSender struct {
	c         *Client
	done      func(Outcome)
	linger    time.Duration
	afterFunc func(time.Duration, func()) *time.Timer // time.AfterFunc; tests may inject

	mu      sync.Mutex
	bt      *Batcher
	lastTag any
	// ctx is the context of the latest Add or Flush: the linger timer flushes with it, not
	// with the one of the Add that started it, which may have ended since (a window of the
	// caller's that is over) while the records waiting now belong to a newer one.
	ctx      context.Context
	timer    *time.Timer
	timerGen uint64 // the current timer's number: one that fired as it was stopped does nothing
	err      error  // a fatal Submit error, reported by every later Add or Flush
	ticket   func(*Batch, Ticket)
	taken    func(*Batch)
}

// OnTicket asks to be told, for every batch HEC takes whole in one request with an ack id,
// its Ticket, before the ack is awaited (again, with a new ticket, if the batch is re-sent).
// f is called from the sending goroutines and must not block for long. Call it before the
// first Add.
func (s *BatchSender) OnTicket(f func(b *Batch, t Ticket)) {
	s.mu.Lock()
	s.ticket = f
	s.mu.Unlock()
}

// OnTaken asks to be told of every batch HEC takes whole in one request with an ack id, once
// its reply shows it: that request refused none of its records, and only the ack is awaited.
// (A batch sent again, its ack lost, may still have records refused by the new request.) f
// is called from the sending goroutines and must not block. Call it before the first Add.
func (s *BatchSender) OnTaken(f func(b *Batch)) {
	s.mu.Lock()
	s.taken = f
	s.mu.Unlock()
}

// NewBatchSender makes a sender that calls done once per batch, whatever becomes of it: from
// another goroutine once the client has taken the batch, or, for a batch the client would not
// take (a context that ended, a fatal error), with that error from the call that tried (Add,
// Flush or the linger timer) after it has released the sender. linger 0 means 2 seconds.
func (c *Client) NewBatchSender(linger time.Duration, done func(Outcome)) *BatchSender {
	if linger <= 0 {
		linger = 2 * time.Second
	}
	return &BatchSender{c: c, done: done, linger: linger, afterFunc: time.AfterFunc, bt: c.NewBatcher()}
}

// Add queues r, tagged. It blocks while the client has MaxInFlight batches unconfirmed.
func (s *BatchSender) Add(ctx context.Context, r Record, tag any) error {
	s.mu.Lock()
	s.ctx = ctx
	if s.err != nil {
		s.mu.Unlock()
		return s.err
	}
	var refused *Batch
	var err error
	if full := s.bt.Add(r); full != nil {
		full.Tag = s.lastTag // r went into a new batch
		// The linger belongs to the batch that just left: r's batch starts its own.
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
		if err = s.submitLocked(ctx, full); err != nil {
			refused = full
		}
	}
	s.lastTag = tag // r is queued either way, and leaves with its own tag
	if s.bt.queued() > 0 && s.timer == nil {
		s.timerGen++
		gen := s.timerGen
		s.timer = s.afterFunc(s.linger, func() { s.lingerFlush(gen) })
	}
	s.mu.Unlock()
	s.refused(refused, err)
	return err
}

// Flush submits the batch being filled, if any.
func (s *BatchSender) Flush(ctx context.Context) error {
	s.mu.Lock()
	s.ctx = ctx
	refused, err := s.flushLocked(ctx)
	s.mu.Unlock()
	s.refused(refused, err)
	return err
}

// lingerFlush is timer gen's flush. A timer that fired while it was being stopped (its batch
// went with a Flush, or with a full batch) finds another current, or none, and leaves the
// records waiting now to their own timer.
func (s *BatchSender) lingerFlush(gen uint64) {
	s.mu.Lock()
	if s.timer == nil || s.timerGen != gen {
		s.mu.Unlock()
		return
	}
	refused, err := s.flushLocked(s.ctx)
	s.mu.Unlock()
	s.refused(refused, err) // no caller hears err: the batch's outcome says it
}

// flushLocked submits the batch being filled; it returns the batch if the client refused it.
func (s *BatchSender) flushLocked(ctx context.Context) (*Batch, error) {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	b := s.bt.Flush()
	if b == nil {
		return nil, s.err
	}
	b.Tag = s.lastTag
	if s.err != nil {
		return b, s.err // records queued before the fatal error: their outcome says it
	}
	if err := s.submitLocked(ctx, b); err != nil {
		return b, err
	}
	return nil, nil
}

func (s *BatchSender) submitLocked(ctx context.Context, b *Batch) error {
	b.onTicket, b.onTaken = s.ticket, s.taken
	if err := s.c.Submit(ctx, b, s.done); err != nil {
		if isFatal(err) {
			s.err = err // nothing more can go; a cancelled context only ends this call
		}
		return err
	}
	return nil
}

// refused gives a batch the client did not take its outcome, so that nobody waits for it.
// It runs without s.mu: done may take the caller's locks.
func (s *BatchSender) refused(b *Batch, err error) {
	if b != nil {
		s.done(Outcome{Batch: b, Err: err})
	}
}
