package hec

// Channels HEC may have forgotten: a send's ack id that shows the ids began again voids every
// ack id of the channel; a lost reply retires the channel (nothing is sent on it again).

// channelReset reports whether a send's ack id shows that HEC forgot the channel: requests go
// one at a time per channel, so each id is higher than the last unless the ids began again.
func (c *Client) channelReset(ep *endpoint, id int64) bool {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	l := c.line(ep)
	if l.anyID && id <= l.maxID {
		return true
	}
	l.maxID, l.anyID, l.unsynced = id, true, false
	return false
}

// unsync notes that a request on ep's channel was answered without an ack id: HEC may still
// have given it one (a partial refusal, say), so the next id is not predicted until a reply
// tells one again.
func (c *Client) unsync(ep *endpoint) {
	c.ackMu.Lock()
	c.line(ep).unsynced = true
	c.ackMu.Unlock()
}

// retire moves ep to a new channel after a reply was lost on it (HEC may have taken the
// request with an ack id nobody knows), without giving the old one up: the batches waiting on
// it go on being asked about there, under a retired endpoint that never sends, except the one
// with ack id 0, which is sent again. Nothing is ever sent on the old channel again, so if HEC
// had forgotten it, the lost request alone revived it, with id 0: no other id can be taken
// for a waiting batch's. (Giving the whole channel up re-sent every batch in flight at each
// dropped connection, and the re-sends met more drops.)
func (c *Client) retire(ep *endpoint) { c.moveOff(ep, true, true) }

// retireStopping is retire for a request cut short because its batch's context ended (the
// collector stopping): the batch with ack id 0 is no longer asked about, but its saved ticket
// stays. A recovery trusts id 0 only when HEC acknowledges another id of the channel, which a
// channel HEC forgot (and the lost request revived) cannot do; voiding it instead would break
// the run of saved tickets at the first batch, and every batch after it would be sent again.
func (c *Client) retireStopping(ep *endpoint) { c.moveOff(ep, true, false) }

// leave moves ep to a new channel as retire does, after a request HEC answered without taking
// it: nothing on the old channel is in doubt, its id 0 included.
func (c *Client) leave(ep *endpoint) { c.moveOff(ep, false, false) }

// moveOff gives ep a new channel and keeps asking about the old one's waiting batches under a
// retired endpoint; with doubtZero, the one with ack id 0 is sent again instead (its tickets
// declared void with voidZero).
func (c *Client) moveOff(ep *endpoint, doubtZero, voidZero bool) {
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
		c.lines[ep] = &ackLine{lat: l.lat, latN: l.latN, slow: l.slow, p95v: l.p95v} // the URL's latencies stay known
	}
	var zero *ackWait
	if doubtZero {
		zero = waiting[0]
		delete(waiting, 0)
	}
	for _, w := range waiting {
		w.on = old
	}
	if len(waiting) > 0 {
		c.pending[old] = waiting
	} else {
		delete(c.lines, old)
	}
	if zero != nil && zero.stale {
		zero = nil // an earlier send of records sent again since: no longer asked about
	}
	if zero != nil {
		zero.stale = true
	}
	c.ackMu.Unlock()
	if zero != nil {
		if voidZero {
			voidTickets(zero.b)
		}
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
	var waiting []*ackWait
	for _, w := range c.pending[ep] {
		if !w.stale { // stale sends' records were sent again since: just no longer asked about
			w.stale = true
			waiting = append(waiting, w)
		}
	}
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
