package hec

import (
	"bytes"
	"context"
	gzip "github.com/klauspost/compress/gzip"
	"net/http"
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
	// Resent counts records sent again after a reply or an ack was lost, or, with acks,
	// taken by a partial refusal (a 400 has no ack id): Splunk may hold them twice.
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
	Resent      int // records sent again after a lost reply or ack, or a partial refusal with acks
	AckTimeouts int // batches re-sent because their ack did not come within AckTimeout
	AckOverdue  int // batches re-sent because their ack was overdue (later ones were acked, or it was alone in flight)
	Retries     int // requests repeated after a retryable failure
	SetAside    int // times a URL was set aside after failing
	BytesRaw    int64
	BytesSent   int64
	AckPolls    int
	AckWaits    int           // batches confirmed by an ack
	AckWaitSum  time.Duration // their total time from first send to ack
	Tickets     int           // batches HEC took whole with an ack id (Ticket)
	// ChannelResets counts the times HEC was seen to have forgotten a channel (its ack ids
	// began again): the batches waiting on it were sent again on a new one.
	ChannelResets int
	// WindowMax is the widest the window of batches in flight grew; BytesInFlightMax the
	// most compressed bytes it held at once.
	WindowMax        int
	BytesInFlightMax int64
}

// Client sends batches to one or more HEC URLs.
type Client struct {
	cfg      Config
	enc      *encoder
	hc       *http.Client
	eps      []*endpoint
	warnings []string
	gz       sync.Pool
	events   atomic.Uint64 // Outcome.Sent and Rejected.Refused

	win    *window
	turns  turns
	bodies sync.Pool // *[]byte batch bodies to fill again
	zbuf   sync.Pool // *bytes.Buffer to compress into
	wg     sync.WaitGroup

	mu    sync.Mutex
	fatal error
	acks  int // learned: -1 unknown, 0 off, 1 on
	// acksChanged: replies disagreed about acks (indexers behind one URL set differently)
	acksChanged bool
	rr          int
	health      []epHealth
	stats       Stats

	ackMu   sync.Mutex
	pending map[*endpoint]map[int64]*ackWait
	lines   map[*endpoint]*ackLine
	// oldChannels are this client's channels that HEC forgot: never asked about again.
	oldChannels map[string]bool
	ackKick     chan struct{}
	stopAck     context.CancelFunc
	ackDone     chan struct{}
}

// New validates cfg and makes a client. Call Close when done.
func New(cfg Config) (*Client, error) {
	warn, err := cfg.setDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, warnings: warn, acks: -1, pending: map[*endpoint]map[int64]*ackWait{}, lines: map[*endpoint]*ackLine{}, oldChannels: map[string]bool{}, ackKick: make(chan struct{}, 1)}
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
	c.enc = newEncoder(cfg.Host, cfg.Source, cfg.Sourcetype, cfg.Index)
	c.win = newWindow(cfg.MaxInFlight, cfg.Window == WindowFixed, cfg.MaxBytesInFlight)
	level := cfg.GzipLevel
	c.zbuf.New = func() any { return new(bytes.Buffer) }
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
	wide, peak := c.win.figures()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.WindowMax, s.BytesInFlightMax = wide, peak
	return s
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
// the window of batches in flight is full (backpressure), and fails at once after a fatal
// error.
func (c *Client) Submit(ctx context.Context, b *Batch, done func(Outcome)) error {
	if err := c.Err(); err != nil {
		return err
	}
	if err := c.win.admit(ctx, b.full); err != nil {
		return err
	}
	if err := c.Err(); err != nil {
		c.win.release()
		return err
	}
	// Compressed here, by the caller, so that no raw batch outlives its Add: batches waiting
	// for their turn or their ack hold only their compressed bodies, however many there are.
	if _, err := c.hold(b); err != nil {
		c.win.release()
		return err
	}
	b.order = c.turns.take()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		out := c.deliver(ctx, b)
		c.win.release()
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

func (c *Client) learnAcks(on bool) {
	c.mu.Lock()
	if c.acks >= 0 && (c.acks == 1) != on {
		c.acksChanged = true
	}
	if on {
		c.acks = 1
	} else {
		c.acks = 0
	}
	c.mu.Unlock()
}
