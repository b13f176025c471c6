package hec

import (
	"context"
	"sync"
	"time"
)

// Stream batches records as they come and submits each batch when it is full, or when its
// first record has waited Linger. Each batch's Tag is the tag given with its last record, so
// a caller that tags records with checkpoint positions learns, from each confirmed batch,
// how far it may commit.
type Stream struct {
	c      *Client
	done   func(Outcome)
	linger time.Duration

	mu      sync.Mutex
	bt      *Batcher
	lastTag any
	timer   *time.Timer
	err     error // a fatal Submit error, reported by every later Add or Flush
}

// NewStream makes a stream that calls done once per batch (from another goroutine).
// linger 0 means 2 seconds.
func (c *Client) NewStream(linger time.Duration, done func(Outcome)) *Stream {
	if linger <= 0 {
		linger = 2 * time.Second
	}
	return &Stream{c: c, done: done, linger: linger, bt: c.NewBatcher()}
}

// Add queues r, tagged. It blocks while the client has MaxInFlight batches unconfirmed.
func (s *Stream) Add(ctx context.Context, r Record, tag any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if full := s.bt.Add(r); full != nil {
		full.Tag = s.lastTag // r went into a new batch
		if err := s.submit(ctx, full); err != nil {
			return err
		}
	}
	s.lastTag = tag
	if s.bt.Pending() > 0 && s.timer == nil {
		s.timer = time.AfterFunc(s.linger, func() { _ = s.Flush(ctx) })
	}
	return nil
}

// Flush submits the batch being filled, if any.
func (s *Stream) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked(ctx)
}

func (s *Stream) flushLocked(ctx context.Context) error {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.err != nil {
		return s.err
	}
	b := s.bt.Flush()
	if b == nil {
		return nil
	}
	b.Tag = s.lastTag
	return s.submit(ctx, b)
}

func (s *Stream) submit(ctx context.Context, b *Batch) error {
	if err := s.c.Submit(ctx, b, s.done); err != nil {
		if IsFatal(err) {
			s.err = err // nothing more can go; a cancelled context only ends this call
		}
		return err
	}
	return nil
}
