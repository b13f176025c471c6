package hec

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
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
}

type ackResult int

const (
	ackPending ackResult = iota
	ackDone
	ackOverdue // later batches were acknowledged and this one's ack is long overdue
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
	lastAck  time.Time // when the channel last acknowledged a batch
	maxID    int64     // the highest ack id a send was given on the channel
	anyID    bool      // maxID is set
}

// p95 is the 95th percentile of the recent latencies (0 before any).
func (l *ackLine) p95() time.Duration {
	n := min(l.latN, len(l.lat))
	if n == 0 {
		return 0
	}
	s := slices.Clone(l.lat[:n])
	slices.Sort(s)
	return s[(n*95+99)/100-1]
}

const firstAckPoll = 20 * time.Millisecond

// pollGap is the least time between two polls of one URL: many batches in flight share
// each poll instead of each asking on its own schedule.
func (c *Client) pollGap() time.Duration { return min(c.cfg.AckInterval, 50*time.Millisecond) }

func (c *Client) line(ep *endpoint) *ackLine {
	l := c.lines[ep]
	if l == nil {
		l = &ackLine{}
		c.lines[ep] = l
	}
	return l
}

// enlist registers the ack id of b's request, answered at sent, as pending on ep's channel.
func (c *Client) enlist(ep *endpoint, b *Batch, id int64, sent time.Time) *ackWait {
	w := &ackWait{done: make(chan struct{}), every: min(firstAckPoll, c.cfg.AckInterval), sent: sent, b: b, on: ep}
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
	return w
}

// waitAck waits for an enlisted ack id; it reports ackDone, ackOverdue, ackVoid, or
// ackPending when AckTimeout ran out.
func (c *Client) waitAck(ctx context.Context, ep *endpoint, id int64, w *ackWait) (ackResult, error) {
	select {
	case c.ackKick <- struct{}{}:
	default:
	}
	t := time.NewTimer(c.cfg.AckTimeout)
	defer t.Stop()
	drop := func() {
		c.ackMu.Lock()
		if c.pending[w.on][id] == w {
			delete(c.pending[w.on], id)
			c.forgetRetiredLocked(w.on)
		}
		c.ackMu.Unlock()
	}
	select {
	case <-w.done:
		return w.result, nil
	case <-t.C:
		drop()
		return ackPending, nil
	case <-ctx.Done():
		drop()
		return ackPending, ctx.Err()
	}
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
			if gapEnd := l.lastPoll.Add(c.pollGap()); first.Before(gapEnd) {
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

// acked wakes the batches whose acks came, learns their latencies, and then wakes as overdue
// the batches sent before an acknowledged one that have waited more than 3 × the 95th
// percentile of the URL's recent latencies (at least AckOverdueMin): their ack is most
// likely lost, and re-sending one batch is better than holding the checkpoint for the whole
// ack timeout.
func (c *Client) acked(ep *endpoint, ids []int64, now time.Time) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	l := c.line(ep)
	for _, id := range ids {
		w, ok := c.pending[ep][id]
		if !ok {
			continue
		}
		l.lat[l.latN%len(l.lat)] = now.Sub(w.sent)
		l.latN++
		l.acked = max(l.acked, w.seq)
		l.lastAck = now
		w.result = ackDone
		close(w.done)
		delete(c.pending[ep], id)
	}
	limit := max(3*l.p95(), c.cfg.AckOverdueMin)
	for id, w := range c.pending[ep] {
		// Overdue: later batches were acknowledged, or (the newest batch, with none after it)
		// the channel has acknowledged others since this one was sent. A batch waiting alone
		// is not: acks that merely slow down would have it sent again and again.
		if (w.seq < l.acked || l.lastAck.After(w.sent)) && now.Sub(w.sent) > limit {
			w.result = ackOverdue
			close(w.done)
			delete(c.pending[ep], id)
		}
	}
	c.forgetRetiredLocked(ep)
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

// channelReset reports whether a send's ack id shows that HEC forgot the channel: requests go
// one at a time per channel, so each id is higher than the last unless the ids began again.
func (c *Client) channelReset(ep *endpoint, id int64) bool {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	l := c.line(ep)
	if l.anyID && id <= l.maxID {
		return true
	}
	l.maxID, l.anyID = id, true
	return false
}

// retire moves ep to a new channel after a reply was lost on it (HEC may have taken the
// request with an ack id nobody knows), without giving the old one up: the batches waiting on
// it go on being asked about there, under a retired endpoint that never sends, except the one
// with ack id 0, which is sent again. Nothing is ever sent on the old channel again, so if HEC
// had forgotten it, the lost request alone revived it, with id 0: no other id can be taken
// for a waiting batch's. (Giving the whole channel up re-sent every batch in flight at each
// dropped connection, and the re-sends met more drops.)
func (c *Client) retire(ep *endpoint) {
	c.ackMu.Lock()
	old := &endpoint{event: ep.event, ack: ep.ack, health: ep.health, display: ep.display, hc: ep.hc,
		gate: make(chan struct{}, 1), send: make(chan struct{}, 1), queue: make(chan struct{}, 1), retired: true}
	old.setChannel(ep.channel())
	old.primed.Store(true)
	c.oldChannels[ep.channel()] = true
	ep.setChannel(newGUID())
	waiting := c.pending[ep]
	delete(c.pending, ep)
	if l := c.lines[ep]; l != nil {
		c.lines[old] = l
		c.lines[ep] = &ackLine{lat: l.lat, latN: l.latN} // the URL's latencies stay known
	}
	zero := waiting[0]
	delete(waiting, 0)
	for _, w := range waiting {
		w.on = old
	}
	if len(waiting) > 0 {
		c.pending[old] = waiting
	} else {
		delete(c.lines, old)
	}
	c.ackMu.Unlock()
	if zero != nil {
		voidTickets(zero.b)
		zero.result = ackVoid
		close(zero.done)
	}
}

// voidTickets tells b's owner that its tickets prove nothing any more (synchronously: a crash
// from then on never takes them for proof).
func voidTickets(b *Batch) {
	if b != nil && b.onTicket != nil {
		b.onTicket(b, Ticket{Void: true})
	}
}

// voidChannel moves ep to a new channel after HEC forgot the old one: the batches waiting for
// acks on it, and cur, have their tickets declared void (told synchronously, so that a crash
// from now on never takes an old ticket for proof), and then are woken to be sent again.
func (c *Client) voidChannel(ep *endpoint, cur *Batch) {
	c.ackMu.Lock()
	c.oldChannels[ep.channel()] = true
	ep.setChannel(newGUID())
	waiting := c.pending[ep]
	delete(c.pending, ep)
	delete(c.lines, ep)
	c.ackMu.Unlock()
	c.count(func(s *Stats) { s.ChannelResets++ })
	voidTickets(cur)
	for _, w := range waiting {
		voidTickets(w.b)
	}
	for _, w := range waiting {
		w.result = ackVoid
		close(w.done)
	}
}
