package hec

import (
	"context"
	"errors"
	"net/url"
	"time"
)

// Acks recovered after a restart: HEC keeps a channel's ack state for a while after its
// client goes away, so a new process can ask whether what the old one sent was indexed.

// Ticket is what a batch that HEC took whole, with an ack id, needs for its ack to be asked
// about after a restart: the URL, the channel, the ack id, and the cookies that pin the
// channel to its indexer behind a load balancer. It holds no secret.
type Ticket struct {
	URL     string    `json:"url"` // the event endpoint
	Channel string    `json:"channel"`
	AckID   int64     `json:"ack_id"`
	Cookies []string  `json:"cookies,omitempty"` // name=value, as the URL's jar held them
	Sent    time.Time `json:"sent"`              // when HEC answered the request
	// Void: HEC forgot the channel the batch's earlier tickets were on; they prove nothing.
	// (Told through OnTicket, never saved as a ticket.)
	Void bool `json:"void,omitempty"`
}

func (c *Client) ticket(ep *endpoint, id int64, sent time.Time) Ticket {
	t := Ticket{URL: ep.event, Channel: ep.channel(), AckID: id, Sent: sent.UTC()}
	if u, err := url.Parse(ep.event); err == nil && ep.hc != nil && ep.hc.Jar != nil {
		for _, ck := range ep.hc.Jar.Cookies(u) {
			t.Cookies = append(t.Cookies, ck.Name+"="+ck.Value)
		}
	}
	return t
}

// Recover asks HEC whether the batches of tickets, sent by an earlier process, were indexed,
// and returns one answer per ticket. It only asks: nothing is ever sent on an old channel (if
// HEC forgot it, a new request would start its ack ids again at 0 and a new batch's ack could
// be taken for an old one's). A ticket is asked about until it is acknowledged or until its
// batch's ack timeout (Sent + AckTimeout) has passed, at least once, or until it is overdue (older
// than AckOverdueMin while another ack id of its channel was acknowledged); every poll asks
// about all of one channel's open tickets. A ticket on a URL this client does not have, or on one of
// this client's own channels, is answered false, as is every ticket of a channel HEC says it
// does not know. False never means lost, only "not proven": the caller sends it again. The
// error is a fatal one (the token refused): the answers so far are still returned.
func (c *Client) Recover(ctx context.Context, tickets []Ticket) ([]bool, error) {
	return c.RecoverEach(ctx, tickets, nil)
}

// RecoverEach is Recover, telling each after every round of polls the tickets that round
// proved (an ack id answers true once: a caller that saves them at once keeps them across
// another crash).
func (c *Client) RecoverEach(ctx context.Context, tickets []Ticket, each func(proved []int)) ([]bool, error) {
	ok := make([]bool, len(tickets))
	told := make([]bool, len(tickets))
	type group struct {
		ep      *endpoint
		channel string
		cookies []string
		open    map[int64][]int // ack id → tickets
		sent    map[int64]time.Time
		twice   map[int64]bool
		zero    []int // tickets of ack id 0
		other   bool  // an id other than 0 was acknowledged
		until   time.Time
		acked   int64 // the highest ack id confirmed; -1: none
		// probe is the id after the highest of the channel's tickets: that of the request a
		// crash cut short, whose ticket was never saved. Asked while id 0 answered true
		// and no other id has: true proves HEC kept the channel, and with it id 0's batch.
		probe    int64
		zeroTrue bool
	}
	groups := map[string]*group{}
	var order []*group
	start := time.Now()
	for i, t := range tickets {
		ep := c.endpointFor(t.URL)
		if ep == nil || t.Void || c.ownChannel(t.Channel) || t.Channel == "" {
			continue
		}
		key := t.URL + "\x00" + t.Channel
		g := groups[key]
		if g == nil {
			g = &group{ep: ep, channel: t.Channel, cookies: append([]string{}, t.Cookies...), open: map[int64][]int{}, sent: map[int64]time.Time{}, twice: map[int64]bool{}, acked: -1}
			groups[key], order = g, append(order, g)
		}
		if len(g.open[t.AckID]) > 0 || g.twice[t.AckID] {
			// One ack id given to two batches on one channel: HEC forgot the channel and the
			// process did not see it. A true answer cannot tell which one was indexed.
			g.twice[t.AckID] = true
			delete(g.open, t.AckID)
			continue
		}
		g.open[t.AckID] = append(g.open[t.AckID], i)
		// A ticket from the future (the clock went back since it was saved, or the
		// checkpoint came from another host) counts as sent now: asked about for the ack
		// timeout, not until its own time plus it.
		sent := t.Sent
		if sent.After(start) {
			sent = start
		}
		g.sent[t.AckID] = sent
		if t.AckID == 0 {
			g.zero = append(g.zero, i)
		}
		if until := sent.Add(c.cfg.AckTimeout); until.After(g.until) {
			g.until = until
		}
	}
	probeUntil := time.Now().Add(c.cfg.AckOverdueMin)
	for _, g := range order {
		if len(g.zero) > 0 {
			for id := range g.sent {
				g.probe = max(g.probe, id+1)
			}
		}
	}
	probing := func(g *group, first bool) bool {
		return g.probe > 0 && !g.other && (first || time.Now().Before(probeUntil))
	}
	// Ack id 0 alone proves nothing: a channel HEC forgot starts again at 0 with the next
	// request sent on it (this process gives such a channel up, or retires it, at once, but a crash
	// can come first), so its 0 may be another batch's. It counts when HEC also acknowledged another
	// id of the channel, which a forgotten channel cannot do.
	view := func() []bool {
		v := append([]bool(nil), ok...)
		for _, g := range order {
			if !g.other {
				for _, i := range g.zero {
					v[i] = false
				}
			}
		}
		return v
	}
	for first := true; ; first = false {
		asked := false
		for _, g := range order {
			// Once id 0 answered true, the probe alone keeps the channel asked about (for
			// AckOverdueMin at most): without it, id 0's batch is sent again.
			probe := probing(g, first) && (len(g.open) > 0 || g.zeroTrue)
			if (len(g.open) == 0 || (!first && time.Now().After(g.until))) && !(probe && g.zeroTrue) {
				continue
			}
			asked = true
			ids := make([]int64, 0, len(g.open)+1)
			for id := range g.open {
				ids = append(ids, id)
			}
			if probe {
				ids = append(ids, g.probe)
			}
			done, err := c.queryAcks(ctx, g.ep, g.channel, g.cookies, ids)
			var herr *Error
			switch {
			case err == nil:
			case ctx.Err() != nil:
				return view(), ctx.Err()
			case errors.As(err, &herr) && (herr.Code == 10 || herr.Code == 11):
				g.open = nil // HEC does not know the channel: nothing of it can be proven
				continue
			case isFatal(err):
				return view(), err
			default:
				continue // asked again at the next round, until the ack timeout
			}
			for _, id := range done {
				for _, i := range g.open[id] {
					ok[i] = true
				}
				delete(g.open, id)
				g.acked = max(g.acked, id)
				g.other = g.other || id != 0
				g.zeroTrue = g.zeroTrue || id == 0
			}
			// Close to the overdue rule of a running client: once the channel has answered
			// true for another batch (HEC knows it and acknowledges on it), an id older than
			// AckOverdueMin is given up: its ack was lost, or read by the earlier process
			// just before it stopped (ack ids answer true once). A channel that acknowledges
			// nothing is asked until the ack timeout.
			now := time.Now()
			for id := range g.open {
				if g.acked >= 0 && now.Sub(g.sent[id]) > c.cfg.AckOverdueMin {
					delete(g.open, id)
				}
			}
		}
		if each != nil {
			var proved []int
			for i, v := range view() {
				if v && !told[i] {
					told[i] = true
					proved = append(proved, i)
				}
			}
			if len(proved) > 0 {
				each(proved)
			}
		}
		if !asked {
			return view(), nil
		}
		if err := c.cfg.Sleep(ctx, c.cfg.AckInterval); err != nil {
			return view(), err
		}
	}
}

func (c *Client) endpointFor(event string) *endpoint {
	for _, ep := range c.eps {
		if ep.event == event {
			return ep
		}
	}
	return nil
}

// ownChannel reports whether ch is one of this client's channels, now or before HEC forgot
// one.
func (c *Client) ownChannel(ch string) bool {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	for _, ep := range c.eps {
		if ep.channel() == ch {
			return true
		}
	}
	return c.oldChannels[ch]
}
