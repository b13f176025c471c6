package hec

// One event request: the body compressed (and held so while its ack is awaited), sent with
// the token and the channel, its reply classified.

import (
	"bytes"
	"context"
	"net/http"

	gzip "github.com/klauspost/compress/gzip"

	"ta-defender-alerts/app/retry"
)

// hold compresses b whole and keeps only the compressed body (without gzip, the body); it
// returns what is held.
func (c *Client) hold(b *Batch) ([]byte, error) {
	if c.cfg.NoGzip {
		return b.body, nil
	}
	if b.gz == nil {
		z, err := c.compress(b.body)
		if err != nil {
			return nil, err
		}
		body := b.body
		b.gz, b.size, b.body = z, len(body), nil
		c.bodies.Put(&body) // the next batch fills it
	}
	return b.gz, nil
}

// serialSends reports whether requests go one at a time per channel: whenever acks are (or
// may be) in use. Without acks, HTTP 200 confirms and requests go in parallel.
func (c *Client) serialSends() bool {
	if c.cfg.Ack == AckOff {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acks != 0 || c.acksChanged // indexers that disagree about acks: one at a time still
}

func (c *Client) compress(raw []byte) ([]byte, error) {
	if c.cfg.NoGzip {
		return raw, nil
	}
	buf := c.zbuf.Get().(*bytes.Buffer)
	defer c.zbuf.Put(buf)
	buf.Reset()
	w := c.gz.Get().(*gzip.Writer)
	defer c.gz.Put(w)
	w.Reset(buf)
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	// Exactly its size: a batch may be held for its ack a long while, and alerts compress
	// well (20-30x), so a buffer sized for the raw body would hold mostly nothing.
	return bytes.Clone(buf.Bytes()), nil
}

// post sends one event request and classifies the reply.
func (c *Client) post(ctx context.Context, ep *endpoint, body []byte) (reply, *Error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.event, bytes.NewReader(body))
	if err != nil {
		return reply{}, &Error{kind: kindFatal, URL: ep.display, Code: -1, Err: err}
	}
	c.headers(req, ep)
	if !c.cfg.NoGzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	c.count(func(s *Stats) { s.Requests++; s.BytesSent += int64(len(body)) })
	resp, err := ep.do(req)
	if err != nil {
		return reply{}, &Error{kind: kindRetry, URL: ep.display, Code: -1, Err: retry.URLError(err)}
	}
	defer resp.Body.Close()
	return readReply(resp, c.cfg.Index)
}

func (c *Client) headers(req *http.Request, ep *endpoint) {
	req.Header.Set("Authorization", "Splunk "+c.cfg.Token.Reveal())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Splunk-Request-Channel", ep.channel())
	req.Header.Set("User-Agent", "TA-defender-alerts")
}
