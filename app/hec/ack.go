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
// batches wait for, all of them in one request, and re-sends a batch whose ack is overdue.

// ackWait is one batch waiting for its ack. Polls start soon after the send and slow down
// to AckInterval, so that a batch alone in flight is not held back by a long poll interval.
type ackWait struct {
	done   chan struct{} // closed with result set
	result ackResult
	next   time.Time
	every  time.Duration
	seq    int64     // its place among the URL's sends with acks
	sent   time.Time // when its request was answered
	b      *Batch    // whose ack it is (its tickets are void if the channel is forgotten)
	on     *endpoint // where it is pending: its URL's, or a retired channel's (retire)
	id     int64     // its ack id on the channel
	stamp  uint64    // the request's Outcome.Sent
	g      *ackGroup // the sends of the same records
	stale  bool      // the records were sent again since (overdue, or the ack timeout ran out)
}

// ackGroup is every send of one part of a batch whose ack id is still asked about: a send
// given up as overdue, or after the ack timeout, stays asked about, so that its ack, if it
// only came late, confirms the records even while a later send's ack is still to come (a
// batch re-sent because its ack was slow is then done when that ack comes, not sent again
// and again).
type ackGroup struct {
	done  chan struct{} // closed when one of the sends is acknowledged
	acked bool
	stamp uint64 // the acknowledged send's Outcome.Sent
	ws    []*ackWait
	lone  int // sends re-sent as overdue while alone in flight
}

func newAckGroup() *ackGroup { return &ackGroup{done: make(chan struct{})} }

// ackedStamp reports whether a send of g was acknowledged, and its Outcome.Sent.
func (c *Client) ackedStamp(g *ackGroup) (bool, uint64) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	return g.acked, g.stamp
}

// dropGroup stops asking about g's sends (its records are confirmed, given up, or split).
func (c *Client) dropGroup(g *ackGroup) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	for _, w := range g.ws {
		if c.pending[w.on][w.id] == w {
			delete(c.pending[w.on], w.id)
			c.forgetRetiredLocked(w.on)
		}
	}
	g.ws = nil
}

type ackResult int

const (
	ackPending ackResult = iota
	ackDone
	ackOverdue // later batches were acknowledged and this one's ack is long overdue
	ackAlone   // overdue while alone in flight: maybe lost, maybe slow (its ack is still asked about)
	ackVoid    // HEC forgot the channel: the ack id proves nothing any more
)

// ackLine is what the poller knows of one URL's acks: the sends numbered, the latest one
// acknowledged, and the recent ack latencies.
type ackLine struct {
	seq      int64 // sends with acks so far
	acked    int64 // the highest seq acknowledged
	lat      [64]time.Duration
	latN     int
	lastPoll time.Time
	lastAck  time.Time     // when the channel last acknowledged a batch
	maxID    int64         // the highest ack id a send was given on the channel
	anyID    bool          // maxID is set
	unsynced bool          // a request was answered without an ack id since (see tellPredicted)
	slow     time.Duration // a tenth of the median recent latency (see pollGap)
	p95v     time.Duration // the recent latencies' 95th percentile (see p95)
}

func (c *Client) line(ep *endpoint) *ackLine {
	l := c.lines[ep]
	if l == nil {
		l = &ackLine{}
		c.lines[ep] = l
	}
	return l
}

// enlist registers the ack id of b's request, answered at sent, as pending on ep's channel,
// one more send of g.
func (c *Client) enlist(ep *endpoint, b *Batch, id int64, sent time.Time, stamp uint64, g *ackGroup) *ackWait {
	w := &ackWait{done: make(chan struct{}), every: min(firstAckPoll, c.cfg.AckInterval), sent: sent, b: b, on: ep,
		id: id, stamp: stamp, g: g}
	w.next = sent.Add(w.every)
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	if c.pending[ep] == nil {
		c.pending[ep] = map[int64]*ackWait{}
	}
	l := c.line(ep)
	l.seq++
	w.seq = l.seq
	c.pending[ep][id] = w
	g.ws = append(g.ws, w)
	return w
}

// waitAck waits for an enlisted send's ack, or that of an earlier send of its group; it
// reports ackDone, ackOverdue, ackVoid, or ackPending when AckTimeout ran out. A send that is
// not done stays asked about (stale) until the caller drops the group.
func (c *Client) waitAck(ctx context.Context, w *ackWait) (ackResult, error) {
	select {
	case c.ackKick <- struct{}{}:
	default:
	}
	t := time.NewTimer(c.cfg.AckTimeout)
	defer t.Stop()
	var res ackResult
	select {
	case <-w.done:
		res = w.result
	case <-w.g.done:
		return ackDone, nil
	case <-t.C:
		res = ackPending
	case <-ctx.Done():
		return ackPending, ctx.Err()
	}
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	if w.g.acked {
		return ackDone, nil // an earlier send's ack came meanwhile
	}
	if res == ackPending && c.pending[w.on][w.id] == w {
		w.stale = true
	}
	return res, nil
}

// pollAcks asks each URL about all its pending ack ids when one of them is due.
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
			if len(ids) == 0 {
				continue
			}
			l := c.line(ep)
			first := now.Add(time.Hour)
			for _, w := range ids {
				if w.next.Before(first) {
					first = w.next
				}
			}
			if gapEnd := l.lastPoll.Add(c.pollGap(l)); first.Before(gapEnd) {
				first = gapEnd
			}
			if first.After(now) {
				if first.Before(due) {
					due = first
				}
				continue
			}
			l.lastPoll = now
			for id, w := range ids {
				work[ep] = append(work[ep], id)
				if !w.next.After(now) {
					w.every = min(2*w.every, c.cfg.AckInterval)
					w.next = now.Add(w.every)
				}
			}
		}
		c.ackMu.Unlock()
		for ep := range work {
			// Not while a request is on its way on the channel: a reply may yet show that HEC
			// forgot the channel and gave that request an ack id a waiting batch has.
			select {
			case ep.send <- struct{}{}:
			case <-ctx.Done():
				return
			}
			c.ackMu.Lock()
			ids := make([]int64, 0, len(c.pending[ep]))
			for id := range c.pending[ep] {
				ids = append(ids, id)
			}
			channel := ep.channel()
			c.ackMu.Unlock()
			if len(ids) > 0 {
				done, err := c.queryAcks(ctx, ep, channel, nil, ids)
				switch {
				case err == nil:
					c.acked(ep, done, time.Now())
				case isFatal(err):
					c.setFatal(err)
				}
				// other errors: the ack timeout decides
			}
			<-ep.send
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

// acked wakes the batches whose acks came (by any of their sends), learns their latencies,
// and then wakes as overdue the batches sent before an acknowledged one that have waited more
// than 3 × the 95th percentile of the URL's recent latencies (at least AckOverdueMin): their
// ack is most likely lost, and re-sending one batch is better than holding the checkpoint for
// the whole ack timeout. A batch alone in flight has nothing after it to be measured against:
// it is overdue after the same time, then twice and four times that for its next sends (at
// most maxAckResends times); its earlier sends stay asked about, so an ack that was only slow
// still confirms it (a duplicate each time), and a lost one costs that time, not the ack
// timeout.
func (c *Client) acked(ep *endpoint, ids []int64, now time.Time) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	l := c.line(ep)
	for _, id := range ids {
		w, ok := c.pending[ep][id]
		if !ok {
			continue
		}
		l.learnLatency(now.Sub(w.sent))
		l.acked = max(l.acked, w.seq)
		l.lastAck = now
		delete(c.pending[ep], id)
		if !w.g.acked {
			w.g.acked, w.g.stamp = true, w.stamp
			close(w.g.done)
		}
		if !w.stale {
			w.result = ackDone
			close(w.done)
			w.stale = true
		}
	}
	if len(ids) > 0 {
		l.relearn()
	}
	limit := max(3*l.p95(), c.cfg.AckOverdueMin)
	for _, w := range c.pending[ep] {
		if w.stale || now.Sub(w.sent) <= limit {
			continue
		}
		// Overdue: later batches were acknowledged, or (the newest batch, with none after it)
		// the channel has acknowledged others since this one was sent; or it is alone in
		// flight, for longer each time.
		switch {
		case w.seq < l.acked || l.lastAck.After(w.sent):
			w.result = ackOverdue
		case w.g.lone < maxAckResends && now.Sub(w.sent) > limit<<w.g.lone && c.aloneLocked(w):
			w.g.lone++
			w.result = ackAlone
		default:
			continue
		}
		close(w.done)
		w.stale = true
	}
	c.forgetRetiredLocked(ep)
}

// aloneLocked reports whether w is the only send waiting for its ack that is not stale.
func (c *Client) aloneLocked(w *ackWait) bool {
	for _, ws := range c.pending {
		for _, o := range ws {
			if o != w && !o.stale {
				return false
			}
		}
	}
	return true
}

// forgetRetiredLocked drops a retired channel once nothing waits on it any more.
func (c *Client) forgetRetiredLocked(ep *endpoint) {
	if ep.retired && len(c.pending[ep]) == 0 {
		delete(c.pending, ep)
		delete(c.lines, ep)
	}
}

// queryAcks asks channel on ep's URL about ids; cookies, if given, go instead of the URL's
// jar (a channel of an earlier process, pinned by its own cookie).
func (c *Client) queryAcks(ctx context.Context, ep *endpoint, channel string, cookies []string, ids []int64) ([]int64, error) {
	body, _ := json.Marshal(map[string][]int64{"acks": ids})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.ack, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	c.headers(req, ep)
	req.Header.Set("X-Splunk-Request-Channel", channel)
	c.count(func(s *Stats) { s.AckPolls++ })
	var resp *http.Response
	if cookies != nil {
		for _, ck := range cookies {
			req.Header.Add("Cookie", ck)
		}
		resp, err = c.hc.Do(req) // no jar: the old cookies, as they were
	} else {
		resp, err = ep.do(req)
	}
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
	return parseAcks(raw, ep.display, resp.StatusCode)
}

// parseAcks reads HEC's ack reply: the ids it answers true.
func parseAcks(raw []byte, url string, status int) ([]int64, error) {
	var r struct {
		Acks map[string]bool `json:"acks"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, &Error{kind: kindRetry, URL: url, Status: status, Code: -1, Err: fmt.Errorf("the ack reply is not HEC's: %w", err)}
	}
	var done []int64
	for k, ok := range r.Acks {
		if n, err := strconv.ParseInt(k, 10, 64); err == nil && ok {
			done = append(done, n)
		}
	}
	return done, nil
}
