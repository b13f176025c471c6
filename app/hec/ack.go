package hec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Indexer acknowledgement: one poller per client asks each URL about the ack ids its
// batches wait for.

// ackWait is one batch waiting for its ack. Polls start soon after the send and slow down
// to AckInterval, so that one batch in flight is not held back by a long poll interval.
type ackWait struct {
	done  chan struct{}
	next  time.Time
	every time.Duration
}

const firstAckPoll = 20 * time.Millisecond

func (c *Client) waitAck(ctx context.Context, ep *endpoint, id int64) (bool, error) {
	w := &ackWait{done: make(chan struct{}), every: min(firstAckPoll, c.cfg.AckInterval)}
	w.next = time.Now().Add(w.every)
	c.ackMu.Lock()
	if c.pending[ep] == nil {
		c.pending[ep] = map[int64]*ackWait{}
	}
	c.pending[ep][id] = w
	c.ackMu.Unlock()
	select {
	case c.ackKick <- struct{}{}:
	default:
	}
	t := time.NewTimer(c.cfg.AckTimeout)
	defer t.Stop()
	drop := func() {
		c.ackMu.Lock()
		delete(c.pending[ep], id)
		c.ackMu.Unlock()
	}
	select {
	case <-w.done:
		return true, nil
	case <-t.C:
		drop()
		return false, nil
	case <-ctx.Done():
		drop()
		return false, ctx.Err()
	}
}

// pollAcks asks each URL about its pending ack ids when one of them is due.
func (c *Client) pollAcks(ctx context.Context) {
	defer close(c.ackDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.ackMu.Lock()
		now := time.Now()
		due := now.Add(time.Hour)
		work := map[*endpoint][]int64{}
		for ep, ids := range c.pending {
			for id, w := range ids {
				if !w.next.After(now) {
					work[ep] = append(work[ep], id)
					w.every = min(2*w.every, c.cfg.AckInterval)
					w.next = now.Add(w.every)
				}
				if w.next.Before(due) {
					due = w.next
				}
			}
		}
		c.ackMu.Unlock()
		for ep, ids := range work {
			done, err := c.queryAcks(ctx, ep, ids)
			if err != nil {
				if isFatal(err) {
					c.setFatal(err)
				}
				continue // the ack timeout decides
			}
			c.ackMu.Lock()
			for _, id := range done {
				if w, ok := c.pending[ep][id]; ok {
					close(w.done)
					delete(c.pending[ep], id)
				}
			}
			c.ackMu.Unlock()
		}
		if len(work) > 0 {
			continue // look again at once: more may be due
		}
		timer.Reset(time.Until(due))
		select {
		case <-ctx.Done():
			return
		case <-c.ackKick:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (c *Client) queryAcks(ctx context.Context, ep *endpoint, ids []int64) ([]int64, error) {
	body, _ := json.Marshal(map[string][]int64{"acks": ids})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.ack, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	c.headers(req, ep)
	c.count(func(s *Stats) { s.AckPolls++ })
	resp, err := ep.do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, herr := readReply(resp, c.cfg.Index)
		herr.URL = ep.display
		return nil, herr
	}
	// A reply for a few ack ids is small: read no more than any other reply.
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return nil, &Error{kind: kindRetry, URL: ep.display, Status: resp.StatusCode, Code: -1, Err: err}
	}
	if len(raw) > maxReply {
		return nil, &Error{kind: kindRetry, URL: ep.display, Status: resp.StatusCode, Code: -1,
			Err: fmt.Errorf("the ack reply is larger than %d bytes, far more than its ids need; it was not read", maxReply)}
	}
	var r struct {
		Acks map[string]bool `json:"acks"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, &Error{kind: kindRetry, URL: ep.display, Status: resp.StatusCode, Code: -1, Err: fmt.Errorf("the ack reply is not HEC's: %w", err)}
	}
	var done []int64
	for k, ok := range r.Acks {
		if n, err := strconv.ParseInt(k, 10, 64); err == nil && ok {
			done = append(done, n)
		}
	}
	return done, nil
}
