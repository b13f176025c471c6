package hec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// Delivery: one batch sent until every record is confirmed, split to find the records HEC
// refuses, and re-sent when a reply or an ack is lost.

// ErrNoAck is in the error of a batch whose indexer acknowledgement never came.
var ErrNoAck = errors.New("no indexer acknowledgement came")

// maxAckResends is how often a batch is sent again after its ack did not come before the
// URL is set aside and, with NoAckFails or without GiveUpAfter, the batch fails: acks that never come mostly
// mean a load balancer that does not keep a channel on one indexer, or a HEC that restarted,
// and every re-send may index the batch once more.
const maxAckResends = 3

// errGaveUp ends a batch's context when GiveUpAfter has passed.
var errGaveUp = errors.New("give-up time reached")

// delivery is one batch on its way.
type delivery struct {
	out       *Outcome
	start     time.Time
	ackMisses int    // sends whose ack did not come
	last      error  // the latest reason the batch is not yet delivered
	url       string // where it was sent last
	order     uint64 // its place in the order of Submit
	turnDone  bool   // its first request has its place on a channel (see turn.go)
}

// passTurn lets the next batch's first request go, once.
func (c *Client) passTurn(d *delivery) {
	if !d.turnDone {
		d.turnDone = true
		c.turns.done(d.order)
	}
}

// deliver sends a batch until every record is confirmed or delivery fails.
func (c *Client) deliver(ctx context.Context, b *Batch) Outcome {
	out := Outcome{Batch: b}
	d := &delivery{out: &out, start: time.Now(), order: b.order}
	defer c.passTurn(d)
	bctx := ctx
	if c.cfg.GiveUpAfter > 0 {
		var cancel context.CancelFunc
		bctx, cancel = context.WithTimeoutCause(ctx, c.cfg.GiveUpAfter, errGaveUp)
		defer cancel()
	}
	// Hold the batch compressed while it is in flight, within the window's byte cap.
	held, err := c.hold(b)
	if err == nil {
		// First requests go in the order batches were submitted (the byte cap is taken in
		// that order too, so a later batch never holds the bytes an earlier one waits for).
		err = c.turns.wait(bctx, b.order)
	}
	if err == nil {
		err = c.win.reserve(bctx, int64(len(held)))
	}
	if err != nil {
		out.Err = c.gaveUp(ctx, bctx, d, err)
		return out
	}
	defer c.win.unreserve(int64(len(held)))
	parts := []part{{b, 0, b.Len()}}
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		more, err := c.sendPart(bctx, d, p)
		if err != nil {
			out.Err = c.gaveUp(ctx, bctx, d, err)
			return out
		}
		parts = append(more, parts...)
	}
	if on, _ := c.AcksOn(); on && c.cfg.Ack != AckOff {
		out.AckLatency = time.Since(d.start)
	}
	c.count(func(s *Stats) {
		if out.AckLatency > 0 {
			s.AckWaits++
			s.AckWaitSum += out.AckLatency
		}
		s.Batches++
		s.Records += b.Len() - len(out.Rejected)
		s.Rejected += len(out.Rejected)
		s.Resent += out.Resent
		s.BytesRaw += int64(b.Size())
	})
	return out
}

// gaveUp turns the error that ended a batch at its give-up time into HEC's last reason (the
// batch's own, or that of the URL set aside that it waited for, also while it waited for its
// turn behind earlier batches); other errors are returned as they are.
func (c *Client) gaveUp(ctx, bctx context.Context, d *delivery, err error) error {
	if ctx.Err() != nil || !errors.Is(context.Cause(bctx), errGaveUp) || isFatal(err) {
		return err
	}
	last := d.last
	if last == nil {
		last = c.downErr() // it waited for a URL set aside by earlier batches
	}
	if last == nil {
		last = &Error{kind: kindRetry, URL: d.url, Code: -1, Err: errors.New("the batch was still being sent"),
			Hint: "HEC, or a proxy in front of it, is slow to take batches of this size"}
	}
	return fmt.Errorf("HEC delivery gave up after %v: %w", c.cfg.GiveUpAfter, last)
}

// sendPart sends records [p.lo, p.hi) until they are confirmed, rejected or split; it returns
// the parts still to send.
func (c *Client) sendPart(ctx context.Context, d *delivery, p part) ([]part, error) {
	out := d.out
	var body []byte
	switch {
	case p.whole() && p.b.gz != nil:
		body = p.b.gz
	case p.whole() && c.cfg.NoGzip:
		body = p.b.body
	default:
		var err error
		if body, err = c.compress(p.body()); err != nil {
			return nil, err
		}
	}
	g := newAckGroup() // the sends of these records whose acks are asked about
	defer c.dropGroup(g)
	for {
		if err := c.Err(); err != nil {
			return nil, err
		}
		if ok, stamp := c.ackedStamp(g); ok {
			out.Sent = stamp // an earlier send's ack came late, before this one went
			return nil, nil
		}
		ep, i, err := c.pick(ctx)
		if err != nil {
			return nil, err
		}
		d.url = ep.display
		serial := c.serialSends()
		if serial {
			// One request at a time per channel: a crash cuts at most one short, and every
			// ack id the channel hands out belongs to a request that was answered.
			if err := ep.takeSend(ctx); err != nil {
				return nil, err
			}
		}
		c.passTurn(d)
		sent := c.events.Add(1)
		// The ticket is told before the request goes, with the ack id HEC will give it (the
		// channel's ids go up by one per request, one request at a time): a crash while the
		// request is on its way then leaves a ticket that proves it if HEC took it.
		predicted, told := c.tellPredicted(ep, p, serial)
		r, herr := c.post(ctx, ep, body)
		answered := time.Now()
		if serial && (herr != nil || !r.ackPresent) {
			c.unsync(ep) // no id learnt: the next request's is not known for sure
			switch {
			case herr != nil && herr.kind == kindRetry && mayHaveIndexed(herr):
				// HEC may have taken it with an ack id nobody knows: the channel's next id, or,
				// on a channel HEC forgot, 0 again, which an ack poll would then take for the
				// batch that waits with 0. Nothing goes on the channel again (retire). The
				// predicted ticket stays: no other request can have its id on that channel.
				if ctx.Err() != nil {
					c.retireStopping(ep)
				} else {
					c.retire(ep)
				}
			case told:
				// HEC answered without an ack id (busy, refused): the ticket is void, and the
				// channel is left, so that its id goes to no other request even if the void
				// never reaches the disk. HEC did not take the request: nothing on the old
				// channel is in doubt (its waiting batches are still asked about there).
				voidTickets(p.b)
				c.leave(ep)
			}
			<-ep.send // else once its ack id is checked and its ticket told: the next request waits
			serial = false
		}
		if ctx.Err() != nil {
			if serial {
				// The ack id is still counted (or shows a reset), as later requests on the
				// channel are checked against it.
				if herr == nil && r.ackPresent {
					switch {
					case c.channelReset(ep, *r.AckID):
						c.voidChannel(ep, p.b)
					case told && *r.AckID != predicted.AckID:
						voidTickets(p.b) // its id went to no request of this batch
					}
				}
				<-ep.send
			}
			return nil, ctx.Err() // stopping is not HEC's fault
		}
		if herr == nil {
			c.markUp(i)
			if !r.ackPresent {
				if c.cfg.Ack == AckOn {
					err := &Error{kind: kindFatal, URL: ep.display, Status: 200, Code: r.Code, Text: r.Text,
						Hint: "indexer acknowledgement is required (ack mode on) but this token has it disabled: enable it on the token, or set the ack mode to auto"}
					c.setFatal(err)
					return nil, err
				}
				c.learnAcks(false)
				out.Sent = sent
				return nil, nil
			}
			c.learnAcks(true)
			if c.cfg.Ack == AckOff {
				out.Sent = sent
				return nil, nil // the caller chose HTTP 200 as proof
			}
			if c.channelReset(ep, *r.AckID) {
				// HEC forgot the channel (a restart, idle cleanup) and its ack ids began again:
				// no ack on it proves anything now. The batches waiting on it, and this one,
				// are sent again on a new channel, and their tickets on the old one are void.
				c.voidChannel(ep, p.b)
				if serial {
					<-ep.send
				}
				out.Resent += p.n()
				c.count(func(s *Stats) { s.Retries++ })
				continue
			}
			// Enlisted before the channel takes another request: if that request shows HEC
			// forgot the channel, this batch is among those voided (else it would wait on the
			// new channel, where its id is another batch's).
			w := c.enlist(ep, p.b, *r.AckID, answered, sent, g)
			if p.whole() && p.b.onTaken != nil {
				p.b.onTaken(p.b)
			}
			if serial {
				// The ticket is told before the channel takes another request (if the
				// predicted one was not right, or the balancer set its cookie only now): a
				// crash leaves no request HEC took whose ticket nobody kept.
				if p.whole() && p.b.onTicket != nil {
					t := c.ticket(ep, *r.AckID, answered)
					switch {
					case !told:
						p.b.onTicket(p.b, t)
						c.count(func(s *Stats) { s.Tickets++ })
					case t.AckID != predicted.AckID:
						voidTickets(p.b) // its id went to no request of this batch
						p.b.onTicket(p.b, t)
						c.count(func(s *Stats) { s.Tickets++ })
					}
				}
				<-ep.send
			}
			res, err := c.waitAck(ctx, w)
			if err != nil {
				d.last = c.noAck(ep, d.ackMisses+1)
				return nil, err
			}
			if res == ackDone {
				_, out.Sent = c.ackedStamp(g)
				return nil, nil
			}
			// Not acknowledged within AckTimeout, or overdue while later batches were: the
			// data may be lost; send it again. (Overdue alone in flight, it may be only
			// slow: that send is not counted as a miss, and its ack is still asked about.)
			if res == ackAlone {
				c.count(func(s *Stats) { s.AckOverdue++; s.Retries++ })
				out.Resent += p.n()
				continue
			}
			d.ackMisses++
			d.last = c.noAck(ep, d.ackMisses)
			if res == ackVoid {
				out.Resent += p.n() // sent again on the new channel, not a miss of this URL
				c.count(func(s *Stats) { s.Retries++ })
				continue
			}
			c.count(func(s *Stats) {
				if res == ackOverdue {
					s.AckOverdue++
				} else {
					s.AckTimeouts++
				}
			})
			if d.ackMisses > maxAckResends {
				// Sending again to where acks never come only indexes the batch again.
				c.setAside(i, c.cfg.SetAside, d.last)
				if c.cfg.GiveUpAfter == 0 || c.cfg.NoAckFails {
					return nil, d.last
				}
			}
			out.Resent += p.n()
			c.count(func(s *Stats) { s.Retries++ })
			continue
		}
		herr.URL = ep.display
		switch herr.kind {
		case kindRetry:
			if mayHaveIndexed(herr) {
				out.Resent += p.n()
			}
			d.last = herr
			rest := c.setAside(i, herr.RetryAfter, herr)
			c.count(func(s *Stats) { s.Retries++ })
			if c.cfg.OnRetry != nil {
				c.cfg.OnRetry(ep.display, herr, rest)
			}
			continue // the batch's context ends the retries at GiveUpAfter
		case kindPartial:
			k := *r.InvalidAt
			if k < 0 || k >= p.n() {
				return c.isolate(p, out, herr), nil
			}
			out.Rejected = append(out.Rejected, c.reject(p.b, p.lo+k, herr))
			var more []part
			if k > 0 {
				if c.prefixProved() {
					out.Sent = sent // the records before k were indexed, and HTTP's word is the proof
				} else {
					// A 400 carries no ack id: nothing proves the records before k were
					// indexed. They go again on their own, for an ack (Splunk may then hold
					// them twice).
					more = append(more, part{p.b, p.lo, p.lo + k})
					out.Resent += k
				}
			}
			if p.lo+k+1 < p.hi {
				more = append(more, part{p.b, p.lo + k + 1, p.hi})
			}
			return more, nil
		case kindMalformed, kindTooLarge:
			return c.isolate(p, out, herr), nil
		default:
			c.setFatal(herr)
			return nil, herr
		}
	}
}

// prefixProved reports whether the records a partial refusal (HTTP 400 with an invalid event
// number) names as before the refused one count as indexed: only where acks are off, chosen
// (ack mode off) or learned from every reply so far. With acks, nothing but an ack proves them.
func (c *Client) prefixProved() bool {
	if c.cfg.Ack == AckOff {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Ack != AckOn && c.acks == 0 && !c.acksChanged
}

// isolate splits a part in two to find the record HEC refuses, or rejects a single record.
func (c *Client) isolate(p part, out *Outcome, herr *Error) []part {
	if p.n() == 1 {
		out.Rejected = append(out.Rejected, c.reject(p.b, p.lo, herr))
		return nil
	}
	mid := p.lo + p.n()/2
	return []part{{p.b, p.lo, mid}, {p.b, mid, p.hi}}
}

// noAck is the error of a batch whose ack did not come after sends sends to ep.
func (c *Client) noAck(ep *endpoint, sends int) *Error {
	return &Error{kind: kindRetry, URL: ep.display, Code: -1,
		Err: fmt.Errorf("%w for a batch sent %d time%s (ack timeout %v)", ErrNoAck, sends, plural(sends), c.cfg.AckTimeout),
		Hint: "the batch is not committed and will be sent again, so it may be indexed more than once. " +
			"Check that the load balancer in front of HEC keeps each client on one indexer (sticky sessions by cookie: " +
			"a channel's acks are known only to the indexer that took its data), and whether HEC restarted or " +
			"dropped idle channels (ack state is kept in memory and lost then)"}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func (c *Client) reject(b *Batch, i int, herr *Error) Rejected {
	code, text := herr.Code, herr.Text
	if herr.kind == kindTooLarge {
		code, text = 413, "the record alone is larger than the HEC server accepts (max_content_length)"
	}
	env := bytes.TrimRight(b.record(i), "\n")
	return Rejected{ID: b.ids[i], Index: i, Envelope: append([]byte(nil), env...), Code: code, Text: text, Refused: c.events.Add(1)}
}
