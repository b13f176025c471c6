package hec

import "time"

// Tickets told before their request goes: see tellPredicted.

// tellPredicted tells b's owner, before p's request goes on ep's channel, the ticket it will
// have: the ack id after the channel's last one. Only for a whole batch, on a channel that
// takes one request at a time and whose last request was answered with an ack id (the first
// request on a channel is told after its reply, with the cookies the balancer then set), with
// acks known to be on and never seen to change (a HEC whose indexers disagree about acks took
// requests in parallel on the channel).
func (c *Client) tellPredicted(ep *endpoint, p part, serial bool) (Ticket, bool) {
	if !serial || !p.whole() || p.b.onTicket == nil {
		return Ticket{}, false
	}
	c.mu.Lock()
	ok := c.acks == 1 && !c.acksChanged
	c.mu.Unlock()
	if !ok {
		return Ticket{}, false
	}
	c.ackMu.Lock()
	l := c.line(ep)
	id, synced := l.maxID+1, l.anyID && !l.unsynced
	c.ackMu.Unlock()
	if !synced {
		return Ticket{}, false
	}
	t := c.ticket(ep, id, time.Now())
	p.b.onTicket(p.b, t)
	c.count(func(s *Stats) { s.Tickets++ })
	return t, true
}
