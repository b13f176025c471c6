package hec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	gzip "github.com/klauspost/compress/gzip"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Rejected is a record Splunk refused as malformed, whole, for the caller's dead-letter file.
type Rejected struct {
	ID       string // the record's ID
	Index    int    // the record's place in its batch, from 0
	Envelope []byte // the whole envelope as sent
	Code     int    // HEC's code (413 for a record too large for the server)
	Text     string // HEC's text
	Refused  uint64 // when the refusal came, on the client's event count (see Outcome.Sent)
}

// Outcome is what became of a batch. With Err nil, every record is confirmed (indexed, or
// rejected and listed in Rejected); with Err set, the batch is not confirmed.
type Outcome struct {
	Batch    *Batch
	Rejected []Rejected
	// Resent counts records sent again after a reply or an ack was lost: Splunk may hold
	// them twice.
	Resent     int
	AckLatency time.Duration // from the first send to the last ack, when acks are on
	// Sent is when the last request that indexed records of the batch was sent (0 if none
	// did), on the client's event count, which counts every request sent and every refusal
	// received. A batch whose Sent is above a Rejected's Refused was sent after that record
	// was refused: HEC accepted data after refusing it.
	Sent uint64
	Err  error
}

// Stats counts a client's work.
type Stats struct {
	Requests    int // event requests sent
	Batches     int // batches confirmed
	Records     int // records confirmed (indexed)
	Rejected    int
	Resent      int // records sent again after a lost reply or ack
	AckTimeouts int
	Retries     int // requests repeated after a retryable failure
	SetAside    int // times a URL was set aside after failing
	BytesRaw    int64
	BytesSent   int64
	AckPolls    int
	AckWaits    int           // batches confirmed by an ack
	AckWaitSum  time.Duration // their total time from first send to ack
}

// Client sends batches to one or more HEC URLs.
type Client struct {
	cfg      Config
	enc      *Encoder
	hc       *http.Client
	eps      []*endpoint
	warnings []string
	gz       sync.Pool
	events   atomic.Uint64 // Outcome.Sent and Rejected.Refused

	sem chan struct{}
	wg  sync.WaitGroup

	mu     sync.Mutex
	fatal  error
	acks   int // learned: -1 unknown, 0 off, 1 on
	rr     int
	health []epHealth
	stats  Stats

	ackMu   sync.Mutex
	pending map[*endpoint]map[int64]*ackWait
	ackKick chan struct{}
	stopAck context.CancelFunc
	ackDone chan struct{}
}

type epHealth struct {
	downUntil time.Time
	fails     int
	err       error // why it was set aside last
}

// New validates cfg and makes a client. Call Close when done.
func New(cfg Config) (*Client, error) {
	warn, err := cfg.setDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, warnings: warn, acks: -1, pending: map[*endpoint]map[int64]*ackWait{}, ackKick: make(chan struct{}, 1)}
	seen := map[string]bool{}
	for _, raw := range cfg.URLs {
		ep, w, err := parseURL(raw)
		if err != nil {
			return nil, err
		}
		if seen[ep.event] {
			continue
		}
		seen[ep.event] = true
		c.eps = append(c.eps, ep)
		c.warnings = append(c.warnings, w...)
	}
	c.health = make([]epHealth, len(c.eps))
	if c.hc, err = newHTTPClient(&c.cfg); err != nil {
		return nil, err
	}
	for _, ep := range c.eps {
		ep.withJar(c.hc)
	}
	c.enc = NewEncoder(cfg.Host, cfg.Source, cfg.Sourcetype, cfg.Index)
	c.sem = make(chan struct{}, cfg.MaxInFlight)
	level := cfg.GzipLevel
	c.gz.New = func() any { w, _ := gzip.NewWriterLevel(nil, level); return w }
	ctx, cancel := context.WithCancel(context.Background())
	c.stopAck, c.ackDone = cancel, make(chan struct{})
	go c.pollAcks(ctx)
	return c, nil
}

// Warnings are things the caller should log once (plain http, verification off).
func (c *Client) Warnings() []string { return append([]string(nil), c.warnings...) }

// Stats returns a copy of the counters.
func (c *Client) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// AcksOn reports whether replies carried ack ids (known after the first delivery).
func (c *Client) AcksOn() (on, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acks == 1, c.acks >= 0
}

// Err returns the fatal error that stopped the client, if any.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fatal
}

// Submit sends b in the background and calls done once with its outcome. It blocks while
// MaxInFlight batches are unconfirmed (backpressure), and fails at once after a fatal error.
func (c *Client) Submit(ctx context.Context, b *Batch, done func(Outcome)) error {
	if err := c.Err(); err != nil {
		return err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := c.Err(); err != nil {
		<-c.sem
		return err
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		out := c.deliver(ctx, b)
		<-c.sem
		done(out)
	}()
	return nil
}

// Wait blocks until every submitted batch has its outcome.
func (c *Client) Wait() { c.wg.Wait() }

// Close waits for submitted batches and stops the ack poller.
func (c *Client) Close() {
	c.wg.Wait()
	c.stopAck()
	<-c.ackDone
	c.hc.CloseIdleConnections()
}

func (c *Client) count(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

func (c *Client) setFatal(err error) {
	c.mu.Lock()
	if c.fatal == nil {
		c.fatal = err
	}
	c.mu.Unlock()
}

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
}

// deliver sends a batch until every record is confirmed or delivery fails.
func (c *Client) deliver(ctx context.Context, b *Batch) Outcome {
	out := Outcome{Batch: b}
	d := &delivery{out: &out, start: time.Now()}
	bctx := ctx
	if c.cfg.GiveUpAfter > 0 {
		var cancel context.CancelFunc
		bctx, cancel = context.WithTimeoutCause(ctx, c.cfg.GiveUpAfter, errGaveUp)
		defer cancel()
	}
	parts := []part{{b, 0, b.Len()}}
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		more, err := c.sendPart(bctx, d, p)
		if err != nil {
			if ctx.Err() == nil && errors.Is(context.Cause(bctx), errGaveUp) && !IsFatal(err) {
				last := d.last
				if last == nil {
					last = c.downErr() // it waited for a URL set aside by earlier batches
				}
				if last == nil {
					last = &Error{Kind: Retry, URL: d.url, Code: -1, Err: errors.New("the batch was still being sent"),
						Hint: "HEC, or a proxy in front of it, is slow to take batches of this size"}
				}
				err = fmt.Errorf("HEC delivery gave up after %v: %w", c.cfg.GiveUpAfter, last)
			}
			out.Err = err
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

// sendPart sends records [p.lo, p.hi) until they are confirmed, rejected or split; it returns
// the parts still to send.
func (c *Client) sendPart(ctx context.Context, d *delivery, p part) ([]part, error) {
	out := d.out
	body, err := c.compress(p.body())
	if err != nil {
		return nil, err
	}
	for {
		if err := c.Err(); err != nil {
			return nil, err
		}
		ep, i, err := c.pick(ctx)
		if err != nil {
			return nil, err
		}
		d.url = ep.display
		sent := c.events.Add(1)
		r, herr := c.post(ctx, ep, body)
		if ctx.Err() != nil {
			return nil, ctx.Err() // stopping is not HEC's fault
		}
		if herr == nil {
			c.markUp(i)
			if !r.ackPresent {
				if c.cfg.Ack == AckOn {
					err := &Error{Kind: Fatal, URL: ep.display, Status: 200, Code: r.Code, Text: r.Text,
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
			acked, err := c.waitAck(ctx, ep, *r.AckID)
			if err != nil {
				d.last = c.noAck(ep, d.ackMisses+1)
				return nil, err
			}
			if acked {
				out.Sent = sent
				return nil, nil
			}
			// Still not acknowledged after AckTimeout: the data may be lost; send it again.
			d.ackMisses++
			d.last = c.noAck(ep, d.ackMisses)
			c.count(func(s *Stats) { s.AckTimeouts++ })
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
		switch herr.Kind {
		case Retry:
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
		case Partial:
			k := *r.InvalidAt
			if k < 0 || k >= p.n() {
				return c.isolate(p, out, herr), nil
			}
			out.Rejected = append(out.Rejected, c.reject(p.b, p.lo+k, herr))
			if k > 0 {
				out.Sent = sent // the records before k were indexed
			}
			if p.lo+k+1 < p.hi {
				return []part{{p.b, p.lo + k + 1, p.hi}}, nil
			}
			return nil, nil
		case Malformed, TooLarge:
			return c.isolate(p, out, herr), nil
		default:
			c.setFatal(herr)
			return nil, herr
		}
	}
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
	return &Error{Kind: Retry, URL: ep.display, Code: -1,
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
	if herr.Kind == TooLarge {
		code, text = 413, "the record alone is larger than the HEC server accepts (max_content_length)"
	}
	env := bytes.TrimRight(b.record(i), "\n")
	return Rejected{ID: b.ids[i], Index: i, Envelope: append([]byte(nil), env...), Code: code, Text: text, Refused: c.events.Add(1)}
}

// mayHaveIndexed tells a lost reply (the request may have arrived) from a refused connection.
func mayHaveIndexed(e *Error) bool {
	if e.Status == http.StatusOK {
		return true // a cut-off 200
	}
	if e.Status != 0 {
		return false // HEC answered: 429 and 5xx index nothing
	}
	var oe *net.OpError
	if errors.As(e.Err, &oe) && oe.Op == "dial" {
		return false
	}
	return true
}

func (c *Client) learnAcks(on bool) {
	c.mu.Lock()
	if on {
		c.acks = 1
	} else {
		c.acks = 0
	}
	c.mu.Unlock()
}

// pick returns the next URL not set aside, round robin; when all are, it waits for the first
// to come back.
func (c *Client) pick(ctx context.Context) (*endpoint, int, error) {
	for {
		c.mu.Lock()
		now := time.Now()
		n := len(c.eps)
		soonest := -1
		for k := 0; k < n; k++ {
			j := (c.rr + k) % n
			if !c.health[j].downUntil.After(now) {
				c.rr = j + 1
				c.mu.Unlock()
				return c.eps[j], j, nil
			}
			if soonest < 0 || c.health[j].downUntil.Before(c.health[soonest].downUntil) {
				soonest = j
			}
		}
		wait := c.health[soonest].downUntil.Sub(now)
		c.mu.Unlock()
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return nil, 0, err
		}
	}
}

// setAside rests a failing URL: exponential backoff with jitter, at least Retry-After. It
// returns how long the URL now rests.
func (c *Client) setAside(i int, retryAfter time.Duration, why error) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := &c.health[i]
	h.fails++
	h.err = why
	d := c.cfg.BackoffInitial << min(h.fails-1, 20)
	d = min(d, c.cfg.SetAside, c.cfg.BackoffMax)
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1)) // jitter: 50–100 %
	d = max(d, retryAfter)
	now := time.Now()
	if until := now.Add(d); until.After(h.downUntil) {
		h.downUntil = until
	}
	c.stats.SetAside++
	return h.downUntil.Sub(now)
}

// downErr is why the URL that comes back first was set aside, if every URL is.
func (c *Client) downErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var soonest *epHealth
	for i := range c.health {
		h := &c.health[i]
		if !h.downUntil.After(now) {
			return nil
		}
		if soonest == nil || h.downUntil.Before(soonest.downUntil) {
			soonest = h
		}
	}
	if soonest == nil {
		return nil
	}
	return soonest.err
}

func (c *Client) markUp(i int) {
	c.mu.Lock()
	c.health[i] = epHealth{}
	c.mu.Unlock()
}

func (c *Client) compress(raw []byte) ([]byte, error) {
	if !*c.cfg.Gzip {
		return raw, nil
	}
	var buf bytes.Buffer
	buf.Grow(len(raw)/4 + 64)
	w := c.gz.Get().(*gzip.Writer)
	defer c.gz.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// post sends one event request and classifies the reply.
func (c *Client) post(ctx context.Context, ep *endpoint, body []byte) (reply, *Error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.event, bytes.NewReader(body))
	if err != nil {
		return reply{}, &Error{Kind: Fatal, URL: ep.display, Code: -1, Err: err}
	}
	c.headers(req, ep)
	if *c.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	c.count(func(s *Stats) { s.Requests++; s.BytesSent += int64(len(body)) })
	resp, err := ep.do(req)
	if err != nil {
		return reply{}, &Error{Kind: Retry, URL: ep.display, Code: -1, Err: cleanURLError(err)}
	}
	defer resp.Body.Close()
	return readReply(resp, c.cfg.Index)
}

func (c *Client) headers(req *http.Request, ep *endpoint) {
	req.Header.Set("Authorization", "Splunk "+c.cfg.Token.Reveal())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Splunk-Request-Channel", ep.channel)
	req.Header.Set("User-Agent", "TA-defender-alerts")
}

func cleanURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// --- indexer acknowledgement ---

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
				if IsFatal(err) {
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
		return nil, &Error{Kind: Retry, URL: ep.display, Status: resp.StatusCode, Code: -1, Err: err}
	}
	if len(raw) > maxReply {
		return nil, &Error{Kind: Retry, URL: ep.display, Status: resp.StatusCode, Code: -1,
			Err: fmt.Errorf("the ack reply is larger than %d bytes, far more than its ids need; it was not read", maxReply)}
	}
	var r struct {
		Acks map[string]bool `json:"acks"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, &Error{Kind: Retry, URL: ep.display, Status: resp.StatusCode, Code: -1, Err: fmt.Errorf("the ack reply is not HEC's: %w", err)}
	}
	var done []int64
	for k, ok := range r.Acks {
		if n, err := strconv.ParseInt(k, 10, 64); err == nil && ok {
			done = append(done, n)
		}
	}
	return done, nil
}
